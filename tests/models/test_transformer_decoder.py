"""Masked-attention transformer decoder: mask rules, attention equivalence, layer order, shapes."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from m2f_mm.models.transformer_decoder import (M2FAttention, M2FTransformerDecoder, M2FTransformerDecoderLayer,
                                               attention_mask_from_logits, unmask_empty_rows)

D, HEADS, Q = 32, 4, 6


def test_unmask_empty_rows_releases_only_fully_blocked_rows():
    blocked = torch.tensor([[[True, True, True], [True, False, True], [False, False, False]]])
    out = unmask_empty_rows(blocked)
    assert out.tolist() == [[[False, False, False], [True, False, True], [False, False, False]]]
    assert out.dtype == torch.bool


def test_fully_masked_row_gives_no_nan_and_attends_everywhere():
    torch.manual_seed(0)
    attn = M2FAttention(embed_dims=D, num_heads=HEADS)
    ref = nn.MultiheadAttention(D, HEADS, batch_first=True)
    ref.load_state_dict(attn.state_dict())
    q, k = torch.randn(2, Q, D), torch.randn(2, 10, D)
    blocked = torch.rand(2, 1, Q, 10) < 0.5
    blocked[0, 0, 2] = True  # query 2 of image 0 would see no key at all
    unmasked = attn(q, k, k, None)
    # Without the rule: nn.MultiheadAttention (mmdet's path) gives NaN; SDPA gives NaN or, in
    # recent torch, a zero row (attends to nothing). Neither is "attend everywhere".
    dense = blocked.expand(2, HEADS, Q, 10).reshape(2 * HEADS, Q, 10)
    assert torch.isnan(ref(q, k, k, attn_mask=dense)[0][0, 2]).all()
    raw = attn(q, k, k, blocked)[0, 2]
    assert torch.isnan(raw).all() or not torch.allclose(raw, unmasked[0, 2])
    # With the rule: finite everywhere, and the released row equals an unmasked query.
    out = attn(q, k, k, unmask_empty_rows(blocked))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 2], unmasked[0, 2])
    dense_fixed = unmask_empty_rows(dense)
    assert torch.isfinite(ref(q, k, k, attn_mask=dense_fixed)[0]).all()


def test_attention_mask_from_logits_threshold_resize_and_detach():
    logits = torch.full((1, 3, 8, 8), -5.0, requires_grad=True)
    with torch.no_grad():
        logits[0, 0, :4] = 5.0       # query 0: top half foreground
        logits[0, 1] = 5.0           # query 1: everything foreground
    # query 2: everything background -> fully blocked -> released
    mask = attention_mask_from_logits(logits, (4, 2))
    assert mask.shape == (1, 1, 3, 8) and mask.dtype == torch.bool and not mask.requires_grad
    resized = F.interpolate(logits.detach(), size=(4, 2), mode='bilinear', align_corners=False)
    assert mask[0, 0, 0].tolist() == (resized[0, 0].flatten().sigmoid() < 0.5).tolist()
    assert mask[0, 0, 0].tolist() == [False] * 4 + [True] * 4
    assert not mask[0, 0, 1].any()
    assert not mask[0, 0, 2].any()


def test_attention_matches_nn_multihead_attention_with_boolean_mask():
    torch.manual_seed(0)
    ours = M2FAttention(embed_dims=D, num_heads=HEADS)
    ref = nn.MultiheadAttention(D, HEADS, batch_first=True)
    ref.load_state_dict(ours.state_dict())  # same parameter layout
    q, k, v = torch.randn(2, Q, D), torch.randn(2, 12, D), torch.randn(2, 12, D)
    blocked = unmask_empty_rows(torch.rand(2, 1, Q, 12) < 0.6)
    dense = blocked.expand(2, HEADS, Q, 12).reshape(2 * HEADS, Q, 12)  # mmdet's [B*heads, Q, K]
    expected = ref(q, k, v, attn_mask=dense, need_weights=False)[0]
    torch.testing.assert_close(ours(q, k, v, blocked), expected, atol=1e-5, rtol=1e-5)


def test_layer_order_cross_then_self_then_ffn_post_norm():
    torch.manual_seed(0)
    layer = M2FTransformerDecoderLayer(embed_dims=D, num_heads=HEADS, feedforward_channels=64).eval()
    q, qp = torch.randn(2, Q, D), torch.randn(2, Q, D)
    mem, mp = torch.randn(2, 9, D), torch.randn(1, 9, D)
    blocked = unmask_empty_rows(torch.rand(2, 1, Q, 9) < 0.5)
    x = layer.norm1(q + layer.cross_attn(q + qp, mem + mp, mem, blocked))
    x = layer.norm2(x + layer.self_attn(x + qp, x + qp, x))
    x = layer.norm3(x + layer.linear2(torch.relu(layer.linear1(x))))
    torch.testing.assert_close(layer(q, qp, mem, mp, blocked), x)


def test_mmdet_style_layer_cfg_is_translated_and_dropout_rejected():
    layer_cfg = dict(self_attn_cfg=dict(embed_dims=D, num_heads=HEADS, dropout=0.0, batch_first=True),
                     cross_attn_cfg=dict(embed_dims=D, num_heads=HEADS, dropout=0.0, batch_first=True),
                     ffn_cfg=dict(embed_dims=D, feedforward_channels=48, num_fcs=2, ffn_drop=0.0,
                                  act_cfg=dict(type='ReLU', inplace=True)))
    dec = M2FTransformerDecoder(num_layers=2, layer_cfg=layer_cfg, return_intermediate=True)
    with pytest.raises(ValueError, match=r'transformer_decoder.return_intermediate=False is not supported'):
        M2FTransformerDecoder(num_layers=2, layer_cfg=layer_cfg, return_intermediate=False)
    assert dec.embed_dims == D and dec.num_heads == HEADS and dec.layers[0].linear1.out_features == 48
    layer_cfg['ffn_cfg']['ffn_drop'] = 0.1
    with pytest.raises(ValueError, match='dropout'):
        M2FTransformerDecoder(num_layers=2, layer_cfg=layer_cfg)
    with pytest.raises(ValueError, match='num_heads'):
        M2FTransformerDecoderLayer.from_cfg(dict(self_attn_cfg=dict(embed_dims=D, num_heads=4),
                                                 cross_attn_cfg=dict(embed_dims=D, num_heads=8)))


def test_decoder_returns_all_sets_and_visits_levels_round_robin():
    torch.manual_seed(0)
    num_layers, shapes = 5, [(2, 3), (4, 6), (8, 12)]
    dec = M2FTransformerDecoder(num_layers=num_layers,
                                layer_cfg=dict(embed_dims=D, num_heads=HEADS, feedforward_channels=64))
    dec.init_weights()
    memories = [torch.randn(2, h * w, D) for h, w in shapes]
    pos = [torch.randn(1, h * w, D) for h, w in shapes]
    mask_features = torch.randn(2, D, 16, 24)
    seen_keys, seen_masks = [], []

    def record(module, args):
        seen_keys.append(args[2].shape[1])
        seen_masks.append(args[4])

    for layer in dec.layers:
        layer.register_forward_pre_hook(record)

    def predict(q):
        mask = torch.einsum('bqc,bchw->bqhw', q, mask_features)
        mask[:, 0] = -50.0  # query 0 predicts an empty mask: its rows must be released, not NaN
        return q[..., :5], mask

    cls_sets, mask_sets = dec(torch.randn(2, Q, D), torch.randn(2, Q, D), memories, pos, shapes, predict)
    assert len(cls_sets) == len(mask_sets) == num_layers + 1
    assert all(c.shape == (2, Q, 5) for c in cls_sets)
    assert all(m.shape == (2, Q, 16, 24) for m in mask_sets)
    assert all(torch.isfinite(c).all() for c in cls_sets)
    assert seen_keys == [6, 24, 96, 6, 24]  # 1/32, 1/16, 1/8, 1/32, ...
    # layer i is masked by the prediction of set i, resized to layer i's level
    for i, blocked in enumerate(seen_masks):
        expected = attention_mask_from_logits(mask_sets[i], shapes[i % 3])
        assert torch.equal(blocked, expected)
        assert not blocked[:, 0, 0].any() and blocked[:, 0, 1:].any()
