"""mmseg front-end: M2FSegHead inside mmseg's EncoderDecoder, and parity with mmseg 1.2.2's head."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import m2f_mm  # noqa: F401
from m2f_mm.checkpoints import convert_mmdet_to_m2f

NUM_CLASSES = 5
DIMS = 32
IN_CHANNELS = [16, 32, 64, 128]


def _seg_head_cfg(**overrides):
    cfg = dict(
        type='M2FSegHead', in_channels=IN_CHANNELS, strides=[4, 8, 16, 32], feat_channels=DIMS, out_channels=DIMS,
        num_classes=NUM_CLASSES, num_queries=6, num_transformer_feat_level=3, align_corners=False,
        pixel_decoder=dict(type='M2FPixelDecoder', num_outs=3, norm_cfg=dict(type='GN', num_groups=8),
                           act_cfg=dict(type='ReLU'),
                           encoder=dict(num_layers=1, layer_cfg=dict(embed_dims=DIMS, num_heads=4, num_levels=3,
                                                                     num_points=2, feedforward_channels=64)),
                           positional_encoding=dict(num_feats=DIMS // 2, normalize=True)),
        positional_encoding=dict(num_feats=DIMS // 2, normalize=True),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(embed_dims=DIMS, num_heads=4, feedforward_channels=64)),
        criterion=dict(type='M2FCriterion', num_classes=NUM_CLASSES, num_points=64,
                       assigner=dict(type='M2FHungarianMatcher')))
    cfg.update(overrides)
    return cfg


def _segmentor():
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    model = MODELS.build(ConfigDict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                               bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size_divisor=32),
        backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(0, 1, 2, 3),
                      norm_cfg=dict(type='BN', requires_grad=True), style='pytorch'),
        decode_head=_seg_head_cfg(),
        train_cfg=dict(), test_cfg=dict(mode='whole')))
    return model


def _sample(h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    sem = torch.randint(0, NUM_CLASSES, (h // 16, w // 16), generator=gen)
    sem = sem.repeat_interleave(16, 0).repeat_interleave(16, 1)[:h, :w]
    sem[:4] = 255
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
    sample.gt_sem_seg = PixelData(data=sem[None])
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
    return image, sample


def test_encoder_decoder_trains_and_predicts_with_m2f_seg_head():
    torch.manual_seed(0)
    model = _segmentor()
    images, samples = zip(*[_sample(64, 96, 1), _sample(80, 70, 2)])   # mixed sizes -> padding
    data = model.data_preprocessor(dict(inputs=list(images), data_samples=list(samples)), training=True)
    losses = model(**data, mode='loss')
    assert {'decode.loss_cls', 'decode.loss_mask', 'decode.loss_dice', 'decode.d0.loss_cls'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.decode_head.query_feat.weight.grad.abs().sum() > 0

    model.eval()
    results = []
    for image, sample in zip(images, samples):  # mmseg's preprocessor needs one size per test batch
        data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), training=False)
        with torch.no_grad():
            results += model(**data, mode='predict')
    assert results[0].pred_sem_seg.data.shape == (1, 64, 96)
    assert results[1].pred_sem_seg.data.shape == (1, 80, 70)
    assert results[0].seg_logits.data.shape == (NUM_CLASSES, 64, 96)
    assert int(results[1].pred_sem_seg.data.max()) < NUM_CLASSES


def test_label_beyond_num_classes_names_image_and_fix():
    torch.manual_seed(0)
    model = _segmentor()
    image, sample = _sample(64, 64, 3)
    sample.gt_sem_seg.data[0, 10, 10] = NUM_CLASSES + 2
    sample.set_metainfo(dict(img_path='bad.png'))
    data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), training=True)
    with pytest.raises(ValueError, match=r'bad\.png.*num_classes=5'):
        model(**data, mode='loss')


def test_rejects_thing_stuff_split():
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    with pytest.raises(ValueError, match='num_classes, not num_things_classes'):
        MODELS.build(_seg_head_cfg(num_things_classes=3))


def _mmseg_reference_head():
    """mmseg 1.2.2's Mask2FormerHead with the same tiny dimensions (the baseline)."""
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    attn = dict(embed_dims=DIMS, num_heads=4, attn_drop=0.0, proj_drop=0.0, dropout_layer=None, batch_first=True)
    cfg = dict(
        type='Mask2FormerHead', in_channels=IN_CHANNELS, strides=[4, 8, 16, 32], feat_channels=DIMS,
        out_channels=DIMS, num_classes=NUM_CLASSES, num_queries=6, num_transformer_feat_level=3, align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder', num_outs=3, norm_cfg=dict(type='GN', num_groups=8),
            act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=1, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=DIMS, num_heads=4, num_levels=3, num_points=2, im2col_step=64,
                                   dropout=0.0, batch_first=True, norm_cfg=None, init_cfg=None),
                ffn_cfg=dict(embed_dims=DIMS, feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
                             act_cfg=dict(type='ReLU', inplace=True))), init_cfg=None),
            positional_encoding=dict(num_feats=DIMS // 2, normalize=True), init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=DIMS // 2, normalize=True),
        transformer_decoder=dict(return_intermediate=True, num_layers=3, layer_cfg=dict(
            self_attn_cfg=copy.deepcopy(attn), cross_attn_cfg=copy.deepcopy(attn),
            ffn_cfg=dict(embed_dims=DIMS, feedforward_channels=64, num_fcs=2, act_cfg=dict(type='ReLU', inplace=True),
                         ffn_drop=0.0, dropout_layer=None, add_identity=True)), init_cfg=None),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0, reduction='mean',
                      class_weight=[1.0] * NUM_CLASSES + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean', naive_dice=True,
                       eps=1.0, loss_weight=5.0))
    return MODELS.build(ConfigDict(cfg))


def test_semantic_scores_equal_mmseg_mask2former_head():
    torch.manual_seed(0)
    reference = _mmseg_reference_head()
    reference.init_weights()
    with torch.no_grad():  # non-trivial embeddings so that every query matters
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))
    reference.eval()
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    ours = MODELS.build(_seg_head_cfg(criterion=None)).eval()
    source = {'panoptic_head.' + k: v for k, v in reference.state_dict().items()}
    converted, unmapped = convert_mmdet_to_m2f(source)
    assert unmapped == []
    ours.load_state_dict({k[len('panoptic_head.'):]: v for k, v in converted.items()}, strict=True)

    feats = [torch.randn(2, c, 96 // s, 64 // s) for c, s in zip(IN_CHANNELS, [4, 8, 16, 32])]
    metas = [dict(img_shape=(90, 60), pad_shape=(96, 64), ori_shape=(90, 60))] * 2
    with torch.no_grad():
        expected = reference.predict(feats, metas, test_cfg=None)
        got = ours.predict(feats, metas, test_cfg=None)
    assert got.shape == expected.shape == (2, NUM_CLASSES, 96, 64)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
