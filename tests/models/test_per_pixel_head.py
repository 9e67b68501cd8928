"""MaskFormer's per-pixel baselines: the loss by hand, tiny heads' shapes, the Plus head against the
MaskFormer head it derives from, errors, and tiny mmseg models that learn."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.structures import SegDataSample

import m2f_mm  # noqa: F401
from m2f_mm.models.maskformer_head import M2FMaskFormerSegHead
from m2f_mm.models.per_pixel_head import M2FPerPixelHead, M2FPerPixelPlusHead, per_pixel_ce_loss

C = 3
IN_CHANNELS = [8, 16, 32, 64]
TINY_PIXEL_DECODER = dict(norm_cfg=dict(type='GN', num_groups=4))
TINY_DECODER = dict(num_layers=3, layer_cfg=dict(embed_dims=16, num_heads=2, feedforward_channels=32, dropout=0.0))


def _feats(batch=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size // s, size // s, generator=g) for c, s in zip(IN_CHANNELS, (4, 8, 16, 32))]


def _samples(maps):
    """maps: LongTensor[B, H, W] -> SegDataSamples with gt_sem_seg and the metas mmseg sets."""
    samples = []
    for sem in maps:
        shape = tuple(sem.shape)
        sample = SegDataSample(metainfo=dict(img_shape=shape, pad_shape=shape, ori_shape=shape,
                                             batch_input_shape=shape))
        sample.gt_sem_seg = PixelData(data=sem[None].clone())
        samples.append(sample)
    return samples


def _per_pixel(**kwargs):
    torch.manual_seed(0)
    head = M2FPerPixelHead(in_channels=IN_CHANNELS, num_classes=C, feat_channels=16, out_channels=16,
                           pixel_decoder=TINY_PIXEL_DECODER, **kwargs)
    head.init_weights()
    return head


def _plus(**kwargs):
    torch.manual_seed(0)
    kwargs.setdefault('transformer_decoder', TINY_DECODER)
    head = M2FPerPixelPlusHead(in_channels=IN_CHANNELS, num_classes=C, feat_channels=16, out_channels=16,
                               pixel_decoder=TINY_PIXEL_DECODER, positional_encoding=dict(num_feats=8), **kwargs)
    head.init_weights()
    return head


def _xent(logits, label):
    return -(logits[label] - math.log(sum(math.exp(v) for v in logits)))


def test_per_pixel_ce_loss_by_hand():
    """Spatially constant logits stay constant when upsampled: the loss is a mean of hand-computed terms."""
    per_image = [[0.0, 1.0, 2.0], [3.0, 0.0, -1.0]]
    logits = torch.tensor(per_image)[:, :, None, None].expand(2, 3, 2, 2).clone().requires_grad_()
    target = torch.full((2, 8, 8), 255)
    target[0, :2, :3] = 2  # 6 pixels
    target[1, 5:, :] = 0  # 24 pixels
    target[1, 0, 0] = 1  # 1 pixel
    loss = per_pixel_ce_loss(logits, target)
    expected = (6 * _xent(per_image[0], 2) + 24 * _xent(per_image[1], 0) + _xent(per_image[1], 1)) / 31
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    empty = per_pixel_ce_loss(logits, torch.full((2, 8, 8), 255))
    assert float(empty.detach()) == 0.0 and empty.requires_grad


def test_per_pixel_head_shapes_loss_and_predict():
    head = _per_pixel()
    feats = _feats()
    (logits, ) = head(feats)
    assert logits.shape == (2, C, 16, 16)
    assert set(head.state_dict()) >= {'predictor.weight', 'predictor.bias', 'pixel_decoder.mask_features.weight',
                                      'pixel_decoder.last_feat_conv.conv.weight'}
    target = torch.randint(0, C, (2, 64, 64))
    target[:, :8] = 255
    losses = head.loss(feats, _samples(target))
    assert list(losses) == ['loss_ce']
    assert torch.allclose(losses['loss_ce'], per_pixel_ce_loss(logits, target))
    scores = head.predict(feats, [s.metainfo for s in _samples(target)])
    assert scores.shape == (2, C, 64, 64)
    assert torch.allclose(scores, F.interpolate(logits, size=(64, 64), mode='bilinear', align_corners=False))
    # mmseg's slide inference gives the crop as a torch.Size img_shape: the output follows it
    slide = head.predict(feats, [dict(img_shape=torch.Size((48, 40)), pad_shape=(64, 64))] * 2)
    assert slide.shape == (2, C, 48, 40)


def test_per_pixel_loss_equals_hand_computed_with_a_constant_classifier():
    head = _per_pixel(loss_weight=0.5)
    with torch.no_grad():
        head.predictor.weight.zero_()
        head.predictor.bias.copy_(torch.tensor([1.0, -1.0, 0.5]))
    target = torch.full((2, 64, 64), 255)
    target[0, :10] = 1
    target[1, 20:30] = 2
    loss = head.loss(_feats(), _samples(target))['loss_ce']
    bias = [1.0, -1.0, 0.5]
    assert float(loss.detach()) == pytest.approx(0.5 * (_xent(bias, 1) + _xent(bias, 2)) / 2, rel=1e-6)


def test_plus_head_is_the_maskformer_head_with_per_pixel_classification():
    """Same weights as a MaskFormer seg head with Q = C (less its class head): its mask logits are the
    Plus head's per-class logits, layer by layer."""
    plus = _plus()
    assert plus.num_queries == C and not hasattr(plus, 'class_embed')
    assert not any(k.startswith('class_embed') for k in plus.state_dict())
    maskformer = M2FMaskFormerSegHead(in_channels=IN_CHANNELS, num_classes=C, num_queries=C, feat_channels=16,
                                      out_channels=16, pixel_decoder=TINY_PIXEL_DECODER,
                                      positional_encoding=dict(num_feats=8), transformer_decoder=TINY_DECODER)
    missing, unexpected = maskformer.load_state_dict(plus.state_dict(), strict=False)
    assert sorted(missing) == ['class_embed.bias', 'class_embed.weight'] and not unexpected
    plus.eval(), maskformer.eval()
    feats = _feats()
    sets = plus(feats)
    assert len(sets) == 3 and all(s.shape == (2, C, 16, 16) for s in sets)
    for ours, theirs in zip(sets, maskformer(feats)[1]):
        assert torch.allclose(ours, theirs)


@pytest.mark.parametrize('deep_supervision', [True, False])
def test_plus_head_losses_per_layer(deep_supervision):
    plus = _plus(deep_supervision=deep_supervision, loss_weight=2.0)
    plus.eval()  # no dropout: the forward below gives the same logits
    feats = _feats()
    target = torch.randint(0, C, (2, 64, 64))
    target[1, :, :5] = 255
    losses = plus.loss(feats, _samples(target))
    sets = plus(feats)
    if deep_supervision:
        assert list(losses) == ['loss_ce', 'd0.loss_ce', 'd1.loss_ce']
        expected = [sets[2], sets[0], sets[1]]
    else:
        assert list(losses) == ['loss_ce']
        expected = [sets[2]]
    for value, logits in zip(losses.values(), expected):
        assert torch.allclose(value, 2.0 * per_pixel_ce_loss(logits, target))
    scores = plus.predict(feats, [s.metainfo for s in _samples(target)])
    assert torch.allclose(scores, F.interpolate(sets[-1], size=(64, 64), mode='bilinear', align_corners=False))


def test_errors_are_one_line_with_the_fix():
    with pytest.raises(ValueError, match=r'num_queries=5 but num_classes=3; .*leave num_queries out'):
        _plus(num_queries=5)
    assert _plus(num_queries=C).num_queries == C
    with pytest.raises(ValueError, match=r'takes no criterion'):
        _plus(criterion=dict(type='M2FCriterion'))
    target = torch.zeros((2, 64, 64), dtype=torch.long)
    target[1, 3, 4] = 7
    for head in (_per_pixel(), _plus()):
        with pytest.raises(ValueError, match=r'image 1 .*class 7, but num_classes=3'):
            head.loss(_feats(), _samples(target))


def test_heads_build_from_mmsegs_registry():
    cfg = dict(type='M2FPerPixelHead', in_channels=IN_CHANNELS, num_classes=C, feat_channels=16, out_channels=16,
               pixel_decoder=TINY_PIXEL_DECODER)
    plus = dict(cfg, type='M2FPerPixelPlusHead', transformer_decoder=TINY_DECODER,
                positional_encoding=dict(num_feats=8))
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert isinstance(SEG_MODELS.build(cfg), M2FPerPixelHead)
        assert isinstance(SEG_MODELS.build(plus), M2FPerPixelPlusHead)
