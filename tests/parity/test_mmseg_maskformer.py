"""Numerical parity with mmseg 1.2.2's MaskFormerHead (semantic segmentation), tiny dimensions.

mmseg's head is built with its ADE20K recipe's structure (mmdet's plain FPN ``PixelDecoder``, the DETR
decoder over the backbone's 1/32 map, mmseg's dropout keys), ours from the same keys; weights go through
convert_mmdet_to_m2f and load strictly. Eval mode (no dropout) on the same features: all prediction
sets, every loss term (matching included) and the semantic scores must agree.
"""
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
QUERIES = 8
LAYERS = 3
IN_CHANNELS = [16, 32, 64, 128]
H, W = 96, 64

ATTN = dict(embed_dims=DIMS, num_heads=4, attn_drop=0.1, proj_drop=0.1, dropout_layer=None, batch_first=True)
LAYER_CFG = dict(self_attn_cfg=ATTN, cross_attn_cfg=ATTN,
                 ffn_cfg=dict(embed_dims=DIMS, feedforward_channels=64, num_fcs=2,
                              act_cfg=dict(type='ReLU', inplace=True),
                              ffn_drop=0.1, dropout_layer=None, add_identity=True))


def _mmseg_head():
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = dict(
        type='MaskFormerHead', in_channels=IN_CHANNELS, feat_channels=DIMS, in_index=[0, 1, 2, 3],
        num_classes=NUM_CLASSES, out_channels=DIMS, num_queries=QUERIES,
        pixel_decoder=dict(type='mmdet.PixelDecoder', norm_cfg=dict(type='GN', num_groups=8),
                           act_cfg=dict(type='ReLU')),
        enforce_decoder_input_project=False, positional_encoding=dict(num_feats=DIMS // 2, normalize=True),
        transformer_decoder=dict(return_intermediate=True, num_layers=LAYERS, layer_cfg=copy.deepcopy(LAYER_CFG),
                                 init_cfg=None),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, reduction='mean',
                      class_weight=[1.0] * NUM_CLASSES + [0.1]),
        loss_mask=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, reduction='mean',
                       loss_weight=20.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean', naive_dice=True,
                       eps=1.0, loss_weight=1.0),
        train_cfg=dict(assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
            dict(type='mmdet.ClassificationCost', weight=1.0),
            dict(type='mmdet.FocalLossCost', weight=20.0, binary_input=True),
            dict(type='mmdet.DiceCost', weight=1.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler')))
    return MODELS.build(ConfigDict(cfg))


def _our_head():
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = dict(
        type='M2FMaskFormerSegHead', in_channels=IN_CHANNELS, feat_channels=DIMS, out_channels=DIMS,
        num_classes=NUM_CLASSES, num_queries=QUERIES,
        pixel_decoder=dict(type='M2FMaskFormerPixelDecoder', norm_cfg=dict(type='GN', num_groups=8)),
        positional_encoding=dict(num_feats=DIMS // 2, normalize=True),
        transformer_decoder=dict(type='M2FDETRDecoder', num_layers=LAYERS, layer_cfg=copy.deepcopy(LAYER_CFG)),
        criterion=dict(type='M2FCriterion', cls_weight=1.0, mask_weight=20.0, dice_weight=1.0, mask_loss='focal',
                       full_mask=True, match_at='prediction'))
    return MODELS.build(ConfigDict(cfg))


@pytest.fixture(scope='module')
def heads():
    torch.manual_seed(0)
    reference = _mmseg_head()
    reference.init_weights()
    with torch.no_grad():  # non-trivial weights everywhere
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))
    reference.eval()
    ours = _our_head().eval()
    source = {'decode_head.' + k: v for k, v in reference.state_dict().items()}
    converted, unmapped = convert_mmdet_to_m2f(source)
    assert unmapped == []
    ours.load_state_dict({k[len('decode_head.'):]: v for k, v in converted.items()}, strict=True)
    return reference, ours


def _feats(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, H // s, W // s, generator=gen, requires_grad=True)
            for c, s in zip(IN_CHANNELS, [4, 8, 16, 32])]


def _samples():
    samples = []
    for seed in range(2):
        gen = torch.Generator().manual_seed(seed)
        sem = torch.randint(0, NUM_CLASSES, (H // 16, W // 16), generator=gen)
        sem = sem.repeat_interleave(16, 0).repeat_interleave(16, 1)
        sem[:4] = 255
        sample = SegDataSample(metainfo=dict(img_shape=(H, W), pad_shape=(H, W), batch_input_shape=(H, W),
                                             ori_shape=(H, W)))
        sample.gt_sem_seg = PixelData(data=sem[None])
        samples.append(sample)
    return samples


def test_prediction_sets_equal_mmseg(heads):
    reference, ours = heads
    feats, samples = _feats(1), _samples()
    with torch.no_grad():
        ref_cls, ref_mask = reference(feats, samples)
        our_cls, our_mask = ours(feats, samples)
    assert len(our_cls) == ref_cls.shape[0] == LAYERS
    for i in range(LAYERS):
        assert our_cls[i].shape == ref_cls[i].shape == (2, QUERIES, NUM_CLASSES + 1)
        torch.testing.assert_close(our_cls[i], ref_cls[i], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(our_mask[i], ref_mask[i], atol=1e-5, rtol=1e-4)


def test_losses_and_gradients_equal_mmseg(heads):
    reference, ours = heads
    losses, grads = [], []
    for head in (reference, ours):
        feats = _feats(2)
        loss = head.loss(feats, _samples(), None if head is ours else dict())
        sum(loss.values()).backward()
        losses.append(loss)
        grads.append(feats[-1].grad)
    ref_loss, our_loss = losses
    assert set(ref_loss) == set(our_loss) and len(our_loss) == 3 * LAYERS
    for key, value in ref_loss.items():
        assert abs(our_loss[key].item() - value.item()) <= 1e-4 * max(1.0, abs(value.item())), key
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-3)


def test_semantic_scores_equal_mmseg(heads):
    reference, ours = heads
    feats = _feats(3)
    metas = [dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W))] * 2
    with torch.no_grad():
        expected = reference.predict(feats, copy.deepcopy(metas), test_cfg=None)
        got = ours.predict(feats, copy.deepcopy(metas), test_cfg=None)
    assert got.shape == expected.shape == (2, NUM_CLASSES, H, W)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
