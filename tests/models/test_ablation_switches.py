"""The paper's ablation switches, each a config option of the real model, each changing exactly what it
claims (tools/demo/run_demo.py --ablations trains them side by side):

- transformer_decoder.use_masked_attention=False: cross-attention gets no attention mask;
- learnable_query_features=False: zero query features, not a parameter, set 0 not supervised;
- transformer_decoder.feature_levels=[0]: every layer attends to the 1/32 level;
- criterion.full_mask=True: losses on every pixel, no random points (also tests/models/test_criterion.py);
- pixel_decoder type M2FFPNPixelDecoder: M2FPixelDecoder's output contract from a plain top-down FPN;
- pixel_decoder type M2FSemanticFPNPixelDecoder: the same FPN, a per-pixel embedding from every level;
- layer_cfg.attention_order='self_first': DETR's order, same parameters;
- layer_cfg.dropout=0.1: DETR-style dropout in training, nothing at inference;
- criterion.match_on / loss_on: points or masks, separately (the matching-loss x training-loss table).
"""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from m2f_mm.models import criterion as criterion_module
from m2f_mm.models.criterion import M2FCriterion
from m2f_mm.models.factored_masks import FactoredMasks
from m2f_mm.models.fpn_pixel_decoder import M2FFPNPixelDecoder
from m2f_mm.models.semantic_fpn_pixel_decoder import M2FSemanticFPNPixelDecoder
from m2f_mm.models.head import M2FHead, shift_set_index
from m2f_mm.models.pixel_decoder import M2FPixelDecoder
from m2f_mm.models.transformer_decoder import M2FTransformerDecoderLayer, attention_mask_from_logits

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
    _assert_decoder_only_switch(_head(), _head(decoder=dict(use_masked_attention=False)))


def _assert_decoder_only_switch(on: M2FHead, off: M2FHead) -> None:
    """With ``on``'s weights loaded into ``off``: set 0 (before any decoder layer) is identical, the last
    set differs."""
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
        first = mask_sets[0]  # the mask logits negated, dense or as their factors
        flipped = FactoredMasks(-first.embeds, first.pixels) if isinstance(first, FactoredMasks) else -first
        return [cls_sets[0] + 5.0] + cls_sets[1:], [flipped] + mask_sets[1:]

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


# -- Semantic FPN pixel decoder ----------------------------------------------------------------------

def _semantic_fpn(**kwargs) -> M2FSemanticFPNPixelDecoder:
    torch.manual_seed(3)
    decoder = M2FSemanticFPNPixelDecoder(in_channels=IN_CHANNELS, feat_channels=D, out_channels=24, scale_channels=16,
                                         num_outs=3, norm_cfg=dict(type='GN', num_groups=8), **kwargs)
    decoder.init_weights()
    return decoder


def test_semantic_fpn_shares_the_fpn_and_embeds_every_level():
    """Same FPN weights -> the same multi-scale maps as M2FFPNPixelDecoder; the embedding differs and
    mixes every level (each level's branch moves it), unlike the FPN's stride-4-only embedding."""
    semantic = _semantic_fpn()
    fpn = M2FFPNPixelDecoder(in_channels=IN_CHANNELS, feat_channels=D, out_channels=24, num_outs=3,
                             norm_cfg=dict(type='GN', num_groups=8))
    own = ('scale_heads.', 'mask_features.')
    shared = {k: v for k, v in semantic.state_dict().items() if not k.startswith(own)}
    missing, _ = fpn.load_state_dict(shared, strict=False)
    assert missing == ['mask_features.weight', 'mask_features.bias']
    feats = _feats()
    with torch.no_grad():
        mask, multi_scale = semantic(feats)
        _, fpn_multi_scale = fpn(feats)
        assert mask.shape == (2, 24, 16, 24)
        assert all(torch.equal(a, b) for a, b in zip(multi_scale, fpn_multi_scale))
        for level in range(4):  # coarsest first: 3, 2, 1, 0 conv stages with 2x upsampling; 1 conv for stride 4
            head = semantic.scale_heads[level]
            assert head.upsamples == 3 - level and len(head.convs) == max(3 - level, 1)
            saved = head.convs[0].conv.weight.clone()
            head.convs[0].conv.weight.add_(0.5)
            moved, _ = semantic(feats)
            head.convs[0].conv.weight.copy_(saved)
            assert not torch.allclose(moved, mask)


def test_semantic_fpn_in_the_head_trains_every_parameter():
    head = _head(pixel_decoder=dict(type='M2FSemanticFPNPixelDecoder', num_outs=3, scale_channels=16,
                                    norm_cfg=dict(type='GN', num_groups=8)))
    assert isinstance(head.pixel_decoder, M2FSemanticFPNPixelDecoder)
    losses = head.loss(_feats(), _gt_samples())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.pixel_decoder.parameters())
    with pytest.raises(ValueError, match='powers of two'):
        M2FSemanticFPNPixelDecoder(in_channels=IN_CHANNELS, strides=[4, 8, 12, 32])


# -- attention order and dropout (the optimisation improvements) -------------------------------------

def _layer(**kwargs) -> M2FTransformerDecoderLayer:
    torch.manual_seed(4)
    return M2FTransformerDecoderLayer(embed_dims=D, num_heads=4, feedforward_channels=48, **kwargs)


def _layer_inputs():
    torch.manual_seed(6)
    query, query_pos = torch.randn(2, Q, D), torch.randn(2, Q, D)
    memory, memory_pos = torch.randn(2, 12, D), torch.randn(1, 12, D)
    blocked = torch.rand(2, 1, Q, 12) > 0.6
    return query, query_pos, memory, memory_pos, blocked


def test_self_first_order_is_detr_order_with_the_same_parameters():
    cross_first, self_first = _layer(), _layer(attention_order='self_first')
    assert list(cross_first.state_dict()) == list(self_first.state_dict())
    self_first.load_state_dict(cross_first.state_dict())
    query, query_pos, memory, memory_pos, blocked = _layer_inputs()
    m = self_first
    with torch.no_grad():
        q = query + query_pos
        x = m.norm2(query + m.self_attn(q, q, query))
        x = m.norm1(x + m.cross_attn(x + query_pos, memory + memory_pos, memory, blocked))
        expected = m.norm3(x + m.linear2(torch.relu(m.linear1(x))))
        got = self_first(query, query_pos, memory, memory_pos, blocked)
        assert torch.allclose(got, expected, atol=1e-6)
        assert not torch.allclose(cross_first(query, query_pos, memory, memory_pos, blocked), got, atol=1e-3)


def test_self_first_order_in_the_head_changes_the_decoder_only():
    _assert_decoder_only_switch(_head(), _head(decoder=dict(layer_cfg=dict(
        embed_dims=D, num_heads=4, feedforward_channels=64, attention_order='self_first'))))


def test_dropout_acts_in_training_only():
    plain, dropped = _layer(), _layer(dropout=0.1)
    dropped.load_state_dict(plain.state_dict())
    inputs = _layer_inputs()
    with torch.no_grad():
        reference = plain.train()(*inputs)
        assert torch.equal(dropped.eval()(*inputs), plain.eval()(*inputs))
        torch.manual_seed(0)
        first = dropped.train()(*inputs)
        torch.manual_seed(0)
        again = dropped(*inputs)
        torch.manual_seed(1)
        other = dropped(*inputs)
    assert torch.equal(first, again)  # random, but only through torch's RNG
    assert not torch.allclose(first, reference, atol=1e-4) and not torch.allclose(first, other, atol=1e-4)
    assert torch.equal(reference, plain.eval()(*inputs))  # dropout 0: training and inference agree
    with pytest.raises(ValueError, match='dropout'):
        _layer(dropout=1.0)
    with pytest.raises(ValueError, match='attention_order'):
        _layer(attention_order='ffn_first')


# -- matching on points / masks x loss on points / masks --------------------------------------------

def _criterion_inputs():
    """One set, two images, predictions near their GT so that every mode finds the same matching."""
    torch.manual_seed(7)
    gts = [torch.zeros(2, 32, 32, dtype=torch.bool), torch.zeros(1, 32, 32, dtype=torch.bool)]
    gts[0][0, 2:14, 3:20] = True
    gts[0][1, 18:30, 10:28] = True
    gts[1][0, 5:25, 5:25] = True
    masks = torch.randn(2, 4, 8, 8) * 0.5 - 4.0
    masks[0, 1] += 8.0 * F_down(gts[0][0])
    masks[0, 3] += 8.0 * F_down(gts[0][1])
    masks[1, 2] += 8.0 * F_down(gts[1][0])
    cls = torch.randn(2, 4, 4)
    cls[0, 1, 0] = cls[0, 3, 1] = cls[1, 2, 2] = 6.0
    labels = [torch.tensor([0, 1]), torch.tensor([2])]
    return cls, masks, labels, gts


def F_down(mask: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(mask[None, None].float(), size=(8, 8), mode='area')[0, 0]


def _run(criterion, seed: int = 11):
    cls, masks, labels, gts = _criterion_inputs()
    matches = []
    match_terms = criterion.assigner.match_terms

    def spy(*args, **kwargs):
        out = match_terms(*args, **kwargs)
        matches.append([t.tolist() for t in out])
        return out
    criterion.assigner.match_terms = spy
    torch.manual_seed(seed)
    losses = criterion([cls], [masks], labels, gts)
    return {k: v.item() for k, v in losses.items()}, matches


def _count_calls(monkeypatch, name: str) -> list:
    calls = []
    original = getattr(criterion_module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    monkeypatch.setattr(criterion_module, name, counted)
    return calls


@pytest.mark.parametrize('match_on', ['points', 'masks'])
@pytest.mark.parametrize('loss_on', ['points', 'masks'])
def test_match_on_and_loss_on_switch_each_half_alone(monkeypatch, match_on, loss_on):
    uniform = _count_calls(monkeypatch, 'uniform_points')
    importance = _count_calls(monkeypatch, 'importance_sample_points')
    kwargs = dict(num_classes=3, num_points=256)
    losses, matches = _run(M2FCriterion(match_on=match_on, loss_on=loss_on, **kwargs))
    assert len(uniform) == (2 if match_on == 'points' else 0)  # one matching draw per image
    assert len(importance) == (1 if loss_on == 'points' else 0)
    assert matches == [[[1, 3], [0, 1]], [[2], [0]]]
    # each half equals the pure mode that shares it: same matching -> same loss of that kind
    pure_loss, _ = _run(M2FCriterion(full_mask=loss_on == 'masks', **kwargs))
    if loss_on == 'masks':
        assert losses == pytest.approx(pure_loss, rel=1e-6, abs=1e-7)
    else:  # the point draws follow the matching's draws: same values only when the matching draws nothing too
        assert losses['loss_cls'] == pytest.approx(pure_loss['loss_cls'], rel=1e-6)
    if match_on == loss_on:
        assert losses == _run(M2FCriterion(full_mask=match_on == 'masks', **kwargs))[0]


def test_full_mask_is_shorthand_for_both_on_masks_and_mixing_is_refused():
    crit = M2FCriterion(full_mask=True)
    assert (crit.match_on, crit.loss_on, crit.full_mask) == ('masks', 'masks', True)
    assert not M2FCriterion(match_on='masks').full_mask and M2FCriterion(match_on='masks', loss_on='masks').full_mask
    with pytest.raises(ValueError, match='either full_mask'):
        M2FCriterion(full_mask=True, loss_on='points')
    with pytest.raises(ValueError, match="loss_on='pixels'"):
        M2FCriterion(loss_on='pixels')
    M2FCriterion(match_on='masks', match_at='prediction')  # matching on masks is enough for match_at
    with pytest.raises(ValueError, match='match_at'):
        M2FCriterion(loss_on='masks', match_at='prediction')
