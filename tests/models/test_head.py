"""M2FHead and M2FDetector on tiny dims: outputs, validation, loss, predict, class-count check."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from m2f_mm.engine.hooks import M2FClassCheckHook
from m2f_mm.models.detector import M2FDetector, check_class_counts
from m2f_mm.models.head import M2FHead

IN_CHANNELS = [8, 16, 32, 64]
D, THINGS, STUFF, Q, LAYERS = 32, 3, 2, 7, 4


def _head_cfg(**kwargs) -> dict:
    cfg = dict(
        in_channels=IN_CHANNELS, strides=[4, 8, 16, 32], feat_channels=D, out_channels=D,
        num_things_classes=THINGS, num_stuff_classes=STUFF, num_queries=Q, num_transformer_feat_level=3,
        pixel_decoder=dict(type='M2FPixelDecoder', num_outs=3, norm_cfg=dict(type='GN', num_groups=8),
                           encoder=dict(num_layers=1, layer_cfg=dict(embed_dims=D, num_heads=4, num_levels=3,
                                                                     num_points=2, feedforward_channels=48))),
        transformer_decoder=dict(num_layers=LAYERS, layer_cfg=dict(embed_dims=D, num_heads=4, feedforward_channels=64)),
        positional_encoding=dict(num_feats=D // 2, normalize=True),
        criterion=dict(type='M2FCriterion', num_classes=THINGS + STUFF, num_points=64))
    cfg.update(kwargs)
    return cfg


def _feats(batch: int, h: int, w: int):
    return [torch.randn(batch, c, -(-h // s), -(-w // s)) for c, s in zip(IN_CHANNELS, [4, 8, 16, 32])]


def _detector(train: bool = True) -> M2FDetector:
    head = _head_cfg(type='M2FHead') if train else _head_cfg(type='M2FHead', criterion=None)
    return M2FDetector(
        backbone=dict(type='ResNet', depth=18, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                      norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, init_cfg=None),
        panoptic_head=head,
        panoptic_fusion_head=dict(type='M2FFusionHead', num_things_classes=THINGS, num_stuff_classes=STUFF),
        train_cfg=dict(),
        test_cfg=dict(panoptic_on=True, instance_on=True, semantic_on=True, max_per_image=10),
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                               bgr_to_rgb=True, pad_size_divisor=32, pad_mask=True, mask_pad_value=0, pad_seg=True,
                               seg_pad_value=255))


def _sample(h: int, w: int, with_gt: bool) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
    if with_gt:
        masks = np.zeros((2, h, w), dtype=np.uint8)
        masks[0, : h // 2, : w // 2] = 1
        masks[1, h // 2:, w // 3:] = 1
        sample.gt_instances = InstanceData(labels=torch.tensor([0, 2]), masks=BitmapMasks(masks, h, w),
                                           bboxes=torch.zeros(2, 4))
        sem = torch.full((1, h, w), 255, dtype=torch.long)
        sem[0, : h // 2, w // 2:] = THINGS + 1  # a stuff class
        sem[0, : h // 2, : w // 2] = 0
        sample.gt_sem_seg = PixelData(sem_seg=sem)
    return sample


def _batch(model, sizes, with_gt: bool):
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in sizes]
    samples = [_sample(h, w, with_gt) for h, w in sizes]
    return model.data_preprocessor(dict(inputs=images, data_samples=samples), training=with_gt)


def test_forward_returns_every_set_and_predict_the_last_one_not_upsampled():
    torch.manual_seed(0)
    head = M2FHead(**_head_cfg())
    head.init_weights()
    head.eval()
    feats = _feats(2, 64, 96)
    with torch.no_grad():
        cls_sets, mask_sets = head(feats)
        cls, mask = head.predict(feats)
    assert len(cls_sets) == len(mask_sets) == LAYERS + 1
    assert all(c.shape == (2, Q, THINGS + STUFF + 1) for c in cls_sets)
    assert all(m.shape == (2, Q, 16, 24) for m in mask_sets)
    assert torch.equal(cls, cls_sets[-1]) and torch.equal(mask, mask_sets[-1])
    # set 0 depends only on the learnable queries and the pixel embedding, not on any layer
    assert not torch.allclose(cls_sets[0], cls_sets[-1])


def test_config_and_input_validation():
    with pytest.raises(ValueError, match=r'num_transformer_feat_level=2 but the pixel decoder returns 3'):
        M2FHead(**_head_cfg(num_transformer_feat_level=2))
    with pytest.raises(ValueError, match='num_feats'):
        M2FHead(**_head_cfg(positional_encoding=dict(num_feats=8, normalize=True)))
    head = M2FHead(**_head_cfg())
    with pytest.raises(ValueError, match=r'expects 4 feature maps .*got 3'):
        head(_feats(1, 64, 64)[:3])
    bad = _feats(1, 64, 64)
    bad[0] = torch.randn(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r'expected \[B, 8, H, W\], got \[1, 3, 16, 16\]'):
        head(bad)
    small = DetDataSample(metainfo=dict(batch_input_shape=(24, 64), img_shape=(24, 64)))
    with pytest.raises(ValueError, match=r'at least 32x32 px .*got 24x64'):
        head(_feats(1, 24, 64), [small])


def test_detector_rejects_tiny_images():
    model = _detector(train=False).eval()
    with pytest.raises(ValueError, match=r'at least 32x32 px .*got 16x40'):
        model._forward(torch.randn(1, 3, 16, 40))


def test_mixed_size_batch_predict_gives_every_task_at_original_size():
    torch.manual_seed(0)
    model = _detector(train=False).eval()
    data = _batch(model, [(40, 70), (64, 48)], with_gt=False)
    assert tuple(data['inputs'].shape[-2:]) == (64, 96)  # padded to a multiple of 32
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    for res, (h, w) in zip(results, [(40, 70), (64, 48)]):
        assert res.pred_panoptic_seg.sem_seg.shape[-2:] == (h, w)
        assert res.pred_sem_seg.sem_seg.shape[-2:] == (h, w)
        assert res.pred_instances.masks.shape[-2:] == (h, w)
        assert int(res.pred_sem_seg.sem_seg.max()) < THINGS + STUFF


def test_loss_has_mmdet_keys_is_finite_and_trains_queries():
    torch.manual_seed(0)
    model = _detector(train=True)
    model.init_weights()
    data = _batch(model, [(40, 70), (64, 48)], with_gt=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    expected = {'loss_cls', 'loss_mask', 'loss_dice'} | {
        f'd{i}.loss_{n}' for i in range(LAYERS) for n in ('cls', 'mask', 'dice')}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    head = model.panoptic_head
    # (the pixel decoder's level_embed only feeds MSDA's offset / weight layers, which start at
    # zero, so its gradient is exactly zero at init; it is not checked here)
    for p in (head.query_feat.weight, head.query_embed.weight, head.level_embed.weight,
              head.class_embed.weight, head.pixel_decoder.input_projs[0].conv.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    # the lazily built criterion stays out of the state_dict (same keys for train and test models)
    assert not any('criterion' in k for k in model.state_dict())
    assert set(model.state_dict()) == set(_detector(train=False).state_dict())


def test_targets_are_padded_to_the_batch_input():
    model = _detector(train=True)
    data = _batch(model, [(40, 70), (64, 48)], with_gt=True)
    labels, masks = model.panoptic_head.get_targets(data['data_samples'], torch.device('cpu'))
    assert [m.shape[-2:] for m in masks] == [(64, 96), (64, 96)]
    # image 0: 2 things (labels 0, 2) then the stuff class present in its semantic map
    assert labels[0].tolist() == [0, 2, THINGS + 1]
    assert not masks[0][:, 40:, :].any() and not masks[0][:, :, 70:].any()


def test_loss_without_criterion_is_a_clear_error_and_train_cfg_keys_are_refused():
    model = _detector(train=False)
    data = _batch(model, [(64, 64)], with_gt=True)
    with pytest.raises(RuntimeError, match=r"needs criterion=dict\(type='M2FCriterion'"):
        model.loss(data['inputs'], data['data_samples'])
    with pytest.raises(ValueError, match=r"train_cfg keys \['assigner', 'num_points'\].*criterion"):
        M2FHead(**_head_cfg(), train_cfg=dict(num_points=12544, assigner=dict(type='HungarianAssigner')))


def test_class_count_mismatch_fails_before_training():
    check_class_counts(3, 2, dict(thing_classes=('a', 'b', 'c'), stuff_classes=('d', 'e')))
    check_class_counts(5, 0, dict(classes=tuple('abcde')))
    with pytest.raises(ValueError, match=r'model has 3 thing \+ 2 stuff.*dataset has 80 thing \+ 53 stuff'):
        check_class_counts(3, 2, dict(thing_classes=('x',) * 80, stuff_classes=('y',) * 53))
    with pytest.raises(ValueError, match=r'dataset has 4'):
        check_class_counts(3, 2, dict(classes=tuple('abcd')))

    class _Loader:
        dataset = type('D', (), {'metainfo': dict(thing_classes=('a',), stuff_classes=())})()

    runner = type('R', (), {'model': _detector(train=False), 'train_dataloader': _Loader()})()
    with pytest.raises(ValueError, match='class-count mismatch'):
        M2FClassCheckHook().before_train(runner)


@pytest.mark.parametrize('masked', [True, False])
def test_masked_attention_switch_decides_whether_masks_steer_the_next_layer(masked):
    """Layer 1's outputs depend on set 0's mask predictions exactly when masked attention is on."""
    torch.manual_seed(0)
    cfg = _head_cfg()
    cfg['transformer_decoder'] = dict(cfg['transformer_decoder'], use_masked_attention=masked)
    head = M2FHead(**cfg).eval()
    feats = _feats(1, 64, 64)
    with torch.no_grad():
        cls_before, _ = head(feats)
        # Mask logits only reach the class logits of later sets through the attention mask.
        head.mask_embed.layers[-1].bias.add_(torch.linspace(-6, 6, head.mask_embed.layers[-1].bias.numel()))
        head.mask_embed.layers[-1].weight.mul_(-3.0)
        cls_after, _ = head(feats)
    changed = not torch.allclose(cls_before[1], cls_after[1], atol=1e-6)
    assert changed == masked
    torch.testing.assert_close(cls_before[0], cls_after[0])  # set 0 precedes any attention


def test_criterion_num_classes_and_assigner_weights_come_from_the_head():
    """Configs give class counts once: the head fills criterion.num_classes; the matcher takes the
    criterion's loss weights unless given; a disagreeing explicit count is an error naming the key."""
    cfg = _head_cfg(criterion=dict(type='M2FCriterion', num_points=64, cls_weight=3.0, dice_weight=4.0))
    criterion = M2FHead(**cfg, train_cfg=dict()).criterion
    assert criterion.num_classes == THINGS + STUFF
    assert (criterion.assigner.cls_weight, criterion.assigner.mask_weight, criterion.assigner.dice_weight) == \
        (3.0, 5.0, 4.0)
    with pytest.raises(ValueError, match=r'criterion\.num_classes=9 but the head has 5 classes'):
        M2FHead(**_head_cfg(criterion=dict(type='M2FCriterion', num_classes=9)))


def _attention_masks(head: M2FHead, feats, masks_of: str):
    """The attention mask each decoder layer received, in order."""
    seen = []
    hooks = [layer.register_forward_hook(lambda m, args, out: seen.append(args[4])) for layer in
             head.transformer_decoder.layers]
    try:
        with torch.no_grad():
            cls_sets, mask_sets = head(feats, masks_of=masks_of)
    finally:
        for hook in hooks:
            hook.remove()
    return cls_sets, mask_sets, seen


@pytest.mark.parametrize('size', [(64, 96), (96, 160)])
def test_last_set_only_gives_every_set_and_attention_mask_of_the_dense_order_in_float64(size):
    """Inference computes stride-4 masks for the final set only and takes the layers' attention masks
    from the per-pixel embeddings resized to each level: exactly the dense order's (float64, random
    non-degenerate weights), every attention mask, every class set and the final masks."""
    torch.manual_seed(1)
    head = M2FHead(**_head_cfg()).double()
    head.init_weights()
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    head.eval()
    # the deformable-attention op runs in float32: the pixel decoder does, and hands float64 on
    head.pixel_decoder.float()
    head.pixel_decoder.register_forward_hook(lambda m, args, out: (out[0].double(), [x.double() for x in out[1]]))
    feats = _feats(2, *size)
    cls_all, masks_all, blocked_all = _attention_masks(head, feats, 'every_set')
    cls_last, masks_last, blocked_last = _attention_masks(head, feats, 'last_set')
    assert len(blocked_all) == len(blocked_last) == LAYERS
    for a, b in zip(blocked_all, blocked_last):
        assert a.dtype == torch.bool and torch.equal(a, b)
        assert 0 < a.float().mean() < 1  # the masks block some keys and not others: the test can fail
    for a, b in zip(cls_all, cls_last):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert all(m is None for m in masks_last[:-1])
    torch.testing.assert_close(masks_all[-1], masks_last[-1], rtol=1e-12, atol=1e-12)
    # what predict() returns: the final set, computed the cheap way
    with torch.no_grad():
        cls, mask = head.predict(feats)
    torch.testing.assert_close(mask, masks_all[-1], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match='masks_of must be one of'):
        head(feats, masks_of='none')
