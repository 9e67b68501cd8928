"""The paper's ablation switches, each a config option of the real model, each changing exactly what it
claims (tools/demo/run_demo.py --ablations trains them side by side):

- transformer_decoder.use_masked_attention=False: cross-attention gets no attention mask;
- learnable_query_features=False: zero query features, not a parameter, set 0 not supervised;
- transformer_decoder.feature_levels=[0]: every layer attends to the 1/32 level;
- criterion.full_mask=True: losses on every pixel, no random points (also tests/models/test_criterion.py);
- pixel_decoder type M2FFPNPixelDecoder: M2FPixelDecoder's output contract from a plain top-down FPN.
"""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from m2f_mm.models.fpn_pixel_decoder import M2FFPNPixelDecoder
from m2f_mm.models.head import M2FHead, shift_set_index
from m2f_mm.models.pixel_decoder import M2FPixelDecoder
from m2f_mm.models.transformer_decoder import attention_mask_from_logits

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # the helpers beside this file (importlib import mode)
from test_head import D, IN_CHANNELS, Q, THINGS, _head_cfg  # noqa: E402

LAYERS = 5
H, W = 64, 96  # levels: 1/32 = 2 x 3, 1/16 = 4 x 6, 1/8 = 8 x 12; masks 16 x 24


def _head(**kwargs) -> M2FHead:
    decoder = dict(num_layers=LAYERS, layer_cfg=dict(embed_dims=D, num_heads=4, feedforward_channels=64))
    decoder.update(kwargs.pop('decoder', {}))
    kwargs.setdefault('criterion', dict(type='M2FCriterion', num_points=64))
    torch.manual_seed(0)
    head = M2FHead(**_head_cfg(transformer_decoder=decoder, **kwargs))
    head.init_weights()
    return head


def _feats(batch: int = 2):
    torch.manual_seed(1)
    return [torch.randn(batch, c, H // s, W // s) for c, s in zip(IN_CHANNELS, [4, 8, 16, 32])]


def _record_layers(head: M2FHead) -> list:
    """Replace each decoder layer's forward with a recorder of its arguments (still running it)."""
    calls = []
    for layer in head.transformer_decoder.layers:
        def spy(query, query_pos, memory, memory_pos, blocked=None, _forward=layer.forward):
            calls.append(dict(query=query.clone(), memory=memory, blocked=blocked))
            return _forward(query, query_pos, memory, memory_pos, blocked)
        layer.forward = spy
    return calls


def _gt_samples(batch: int = 2):
    samples = []
    for b in range(batch):
        sample = DetDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W), batch_input_shape=(H, W)))
        masks = np.zeros((2, H, W), np.uint8)
        masks[0, 4:30, 8 + b:40] = 1
        masks[1, 34:60, 50:90] = 1
        sample.gt_instances = InstanceData(labels=torch.tensor([0, 2]), masks=BitmapMasks(masks, H, W),
                                           bboxes=torch.zeros(2, 4))
        sem = torch.full((1, H, W), THINGS, dtype=torch.long)  # the first stuff class everywhere else
        sample.gt_sem_seg = PixelData(sem_seg=sem)
        samples.append(sample)
    return samples


# -- masked attention --------------------------------------------------------------------------------

@pytest.mark.parametrize('masked', [True, False])
def test_masked_attention_switch_sets_or_removes_the_cross_attention_mask(masked):
    head = _head(decoder=dict(use_masked_attention=masked)).eval()
    calls = _record_layers(head)
    with torch.no_grad():
        _, mask_sets = head(_feats())
    assert len(calls) == LAYERS
    for i, call in enumerate(calls):
        if not masked:
            assert call['blocked'] is None  # plain cross-attention
            continue
        # the mask of layer i comes from prediction set i, resized to the level layer i attends to
        level_hw = [(2, 3), (4, 6), (8, 12)][i % 3]
        expected = attention_mask_from_logits(mask_sets[i], level_hw)
        assert call['blocked'].shape == (2, 1, Q, level_hw[0] * level_hw[1])
        assert torch.equal(call['blocked'], expected)
    if masked:  # the masks really block something, so the switch changes the computation
        assert any(bool(call['blocked'].any()) for call in calls)


def test_masked_attention_switch_changes_nothing_else():
    """Same weights: set 0 (before any attention) is identical, later sets differ."""
    on, off = _head(), _head(decoder=dict(use_masked_attention=False))
    off.load_state_dict(on.state_dict())
    with torch.no_grad():
        cls_on, mask_on = on.eval()(_feats())
        cls_off, mask_off = off.eval()(_feats())
    assert torch.equal(cls_on[0], cls_off[0]) and torch.equal(mask_on[0], mask_off[0])
    assert not torch.allclose(mask_on[-1], mask_off[-1])


# -- learnable query features ------------------------------------------------------------------------

def test_zero_query_features_are_zeros_and_not_a_parameter():
    head = _head(learnable_query_features=False).eval()
    assert head.query_feat is None
    assert not any('query_feat' in name for name in head.state_dict())
    assert 'query_embed.weight' in head.state_dict()  # query positions stay learnable
    assert len(head.state_dict()) == len(_head().state_dict()) - 1
    calls = _record_layers(head)
    with torch.no_grad():
        cls_sets, mask_sets = head(_feats())
    assert torch.count_nonzero(calls[0]['query']) == 0  # the first layer gets zero queries
    # ... so every query predicts the same thing before the first layer
    assert torch.allclose(cls_sets[0], cls_sets[0][:, :1].expand_as(cls_sets[0]))
    assert torch.allclose(mask_sets[0], mask_sets[0][:, :1].expand_as(mask_sets[0]))
    assert not torch.allclose(cls_sets[1], cls_sets[1][:, :1].expand_as(cls_sets[1]))


def test_zero_query_features_leave_set_0_unsupervised():
    head = _head(learnable_query_features=False)
    seen = []
    criterion = head.criterion
    original = criterion.forward

    def spy(cls_sets, mask_sets, labels, masks):
        seen.append((list(cls_sets), list(mask_sets)))
        return original(cls_sets, mask_sets, labels, masks)

    criterion.forward = spy
    feats, samples = _feats(), _gt_samples()
    torch.manual_seed(2)
    losses = head.loss(feats, samples)
    # the criterion sees sets 1..LAYERS (not set 0) ...
    torch.manual_seed(3)
    cls_sets, mask_sets = head(feats)
    assert len(seen[0][0]) == LAYERS
    for got, full in zip(seen[0][0], cls_sets[1:]):
        assert torch.allclose(got, full)
    # ... and the loss keys keep each set's index: no d0.*, d1..d{LAYERS-1} and the last set
    assert not any(k.startswith('d0.') for k in losses)
    assert sorted({k.split('.')[0] for k in losses if '.' in k}) == [f'd{i}' for i in range(1, LAYERS)]
    assert {'loss_cls', 'loss_mask', 'loss_dice'} <= set(losses)
    # with learnable features the same head supervises set 0 as d0.*
    learnable = _head()
    assert {'d0.loss_cls', 'd0.loss_mask', 'd0.loss_dice'} <= set(learnable.loss(feats, samples))


def test_set_0_gets_no_gradient_from_the_loss_when_not_learnable():
    """A gradient check of 'not supervised': perturbing set 0's outputs leaves every loss unchanged."""
    head = _head(learnable_query_features=False)
    feats, samples = _feats(), _gt_samples()
    forward = head.forward
    torch.manual_seed(4)
    base = {k: v.item() for k, v in head.loss(feats, samples).items()}

    def perturbed(*args, **kwargs):
        cls_sets, mask_sets = forward(*args, **kwargs)
        return [cls_sets[0] + 5.0] + cls_sets[1:], [-mask_sets[0]] + mask_sets[1:]

    head.forward = perturbed
    torch.manual_seed(4)
    again = {k: v.item() for k, v in head.loss(feats, samples).items()}
    assert again == base


def test_shift_set_index():
    assert shift_set_index('d0.loss_cls', 1) == 'd1.loss_cls'
    assert shift_set_index('d12.loss_dice', 1) == 'd13.loss_dice'
    assert shift_set_index('loss_mask', 1) == 'loss_mask'
    assert shift_set_index('dice.loss', 1) == 'dice.loss'


# -- single feature level ----------------------------------------------------------------------------

@pytest.mark.parametrize('levels, expected', [(None, [0, 1, 2, 0, 1]), ([0], [0] * LAYERS), ([2, 1], [2, 1, 2, 1, 2])])
def test_feature_levels_choose_what_each_layer_attends_to(levels, expected):
    head = _head(decoder=dict(feature_levels=levels)).eval()
    calls = _record_layers(head)
    with torch.no_grad():
        _, mask_sets = head(_feats())
    sizes = [6, 24, 96]  # keys of the 1/32, 1/16, 1/8 levels
    assert [sizes.index(call['memory'].shape[1]) for call in calls] == expected
    for i, (call, level) in enumerate(zip(calls, expected)):
        hw = [(2, 3), (4, 6), (8, 12)][level]  # the attention mask is resized to that level
        assert torch.equal(call['blocked'], attention_mask_from_logits(mask_sets[i], hw))


def test_feature_levels_refused_when_impossible():
    with pytest.raises(ValueError, match='feature_levels must be None or a non-empty list'):
        _head(decoder=dict(feature_levels=[]))
    head = _head(decoder=dict(feature_levels=[0, 3]))
    with pytest.raises(ValueError, match=r'feature_levels=\[0, 3\] but the pixel decoder gives 3 levels'):
        head(_feats())


# -- full-mask loss ----------------------------------------------------------------------------------

def test_full_mask_loss_draws_no_random_points_and_differs_from_point_loss():
    feats, samples = _feats(), _gt_samples()
    point, full = _head(), _head(criterion=dict(type='M2FCriterion', full_mask=True))
    full.load_state_dict(point.state_dict())
    torch.manual_seed(5)
    state = torch.get_rng_state()
    full_losses = full.loss(feats, samples)
    assert torch.equal(torch.get_rng_state(), state)  # every pixel, no sampling
    torch.manual_seed(5)
    point_losses = point.loss(feats, samples)
    assert not torch.equal(torch.get_rng_state(), state)
    assert set(full_losses) == set(point_losses)
    assert full_losses['loss_cls'].item() == pytest.approx(point_losses['loss_cls'].item(), rel=0.2)
    assert full_losses['loss_mask'].item() != point_losses['loss_mask'].item()


# -- FPN pixel decoder -------------------------------------------------------------------------------

def test_fpn_pixel_decoder_has_the_pixel_decoder_contract():
    kwargs = dict(in_channels=IN_CHANNELS, strides=[4, 8, 16, 32], feat_channels=D, out_channels=24, num_outs=3,
                  norm_cfg=dict(type='GN', num_groups=8))
    fpn = M2FFPNPixelDecoder(**kwargs)
    fpn.init_weights()
    msda = M2FPixelDecoder(**kwargs, encoder=dict(num_layers=1, layer_cfg=dict(
        embed_dims=D, num_heads=4, num_levels=3, num_points=2, feedforward_channels=48)))
    feats = _feats()
    got, ref = fpn(feats), msda(feats)
    assert got[0].shape == ref[0].shape == (2, 24, 16, 24)
    assert [t.shape for t in got[1]] == [t.shape for t in ref[1]] == [(2, D, 2, 3), (2, D, 4, 6), (2, D, 8, 12)]
    assert fpn.num_outs == 3 and fpn.strides == [4, 8, 16, 32]


def test_fpn_pixel_decoder_is_top_down():
    """A coarse input reaches every output; a stride-4 input reaches only the per-pixel embedding."""
    fpn = M2FFPNPixelDecoder(in_channels=IN_CHANNELS, feat_channels=D, out_channels=D,
                             norm_cfg=dict(type='GN', num_groups=8))
    fpn.init_weights()
    feats = _feats()
    with torch.no_grad():
        base_mask, base_ms = fpn(feats)
        fine = [feats[0] + 1.0] + feats[1:]
        mask, ms = fpn(fine)
        assert all(torch.equal(a, b) for a, b in zip(ms, base_ms)) and not torch.allclose(mask, base_mask)
        coarse = feats[:3] + [feats[3] + 1.0]
        mask, ms = fpn(coarse)
        assert not torch.allclose(mask, base_mask) and not any(torch.allclose(a, b) for a, b in zip(ms, base_ms))


def test_fpn_pixel_decoder_in_the_head_trains_and_refuses_encoder_keys():
    head = _head(pixel_decoder=dict(type='M2FFPNPixelDecoder', num_outs=3, norm_cfg=dict(type='GN', num_groups=8)))
    losses = head.loss(_feats(), _gt_samples())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.pixel_decoder.parameters())
    with pytest.raises(TypeError, match='encoder'):
        _head(pixel_decoder=dict(type='M2FFPNPixelDecoder', encoder=dict(num_layers=1)))
    with pytest.raises(ValueError, match='num_outs must be in'):
        M2FFPNPixelDecoder(in_channels=IN_CHANNELS, num_outs=4)
