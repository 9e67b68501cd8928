"""M2FPixelDecoder: shapes, reference points, config validation, equality with mmdet's decoder."""
import pytest
import torch

from m2f_mm.checkpoints import convert_mmdet_to_m2f
from m2f_mm.models.pixel_decoder import M2FPixelDecoder, grid_reference_points

IN_CHANNELS = [8, 16, 24, 32]
STRIDES = [4, 8, 16, 32]
D = 32


def _decoder(num_layers: int = 2, **kwargs) -> M2FPixelDecoder:
    cfg = dict(in_channels=IN_CHANNELS, strides=STRIDES, feat_channels=D, out_channels=16, num_outs=3,
               norm_cfg=dict(type='GN', num_groups=8),
               encoder=dict(num_layers=num_layers, layer_cfg=dict(embed_dims=D, num_heads=4, num_levels=3,
                                                                  num_points=2, feedforward_channels=48)))
    cfg.update(kwargs)
    dec = M2FPixelDecoder(**cfg)
    dec.init_weights()
    return dec


def _feats(batch: int, h: int, w: int):
    """Backbone-like maps for an input of h x w (ceil division, as a strided conv stack gives)."""
    return [torch.randn(batch, c, -(-h // s), -(-w // s)) for c, s in zip(IN_CHANNELS, STRIDES)]


def test_output_shapes_coarsest_first():
    torch.manual_seed(0)
    dec = _decoder()
    mask_features, multi_scale = dec(_feats(2, 72, 100))  # 100 is not divisible by 32
    assert mask_features.shape == (2, 16, 18, 25)
    assert [tuple(x.shape) for x in multi_scale] == [(2, D, 3, 4), (2, D, 5, 7), (2, D, 9, 13)]
    assert torch.isfinite(mask_features).all()


def test_reference_points_are_normalised_cell_centres():
    pts = grid_reference_points([(2, 4), (1, 2)], torch.device('cpu'))
    assert pts.shape == (10, 2)
    # level 0 (2 x 4): row-major, (x, y)
    assert torch.allclose(pts[:4], torch.tensor([[0.125, 0.25], [0.375, 0.25], [0.625, 0.25], [0.875, 0.25]]))
    assert torch.allclose(pts[4], torch.tensor([0.125, 0.75]))
    assert torch.allclose(pts[8:], torch.tensor([[0.25, 0.5], [0.75, 0.5]]))


def test_wrong_number_of_levels_or_channels_is_a_clear_error():
    dec = _decoder(num_layers=1)
    feats = _feats(1, 64, 64)
    with pytest.raises(ValueError, match=r'expects 4 feature maps.*got 3'):
        dec(feats[1:])
    feats[2] = torch.randn(1, 99, 4, 4)
    with pytest.raises(ValueError, match=r'input 2 \(stride 16\): expected \[B, 24, H, W\], got \[1, 99, 4, 4\]'):
        dec(feats)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match='num_feats'):
        _decoder(positional_encoding=dict(num_feats=8, normalize=True))
    with pytest.raises(ValueError, match='num_outs'):
        _decoder(num_outs=4)
    with pytest.raises(ValueError, match='dropout'):
        _decoder(encoder=dict(num_layers=1, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=D, num_heads=4, num_levels=3, dropout=0.1), ffn_cfg=dict(embed_dims=D))))


def test_batch_independent_and_padding_free():
    """No padding mask: each image's output depends only on its own (padded) features."""
    torch.manual_seed(0)
    dec = _decoder().eval()
    feats = _feats(2, 64, 96)
    with torch.no_grad():
        both = dec(feats)
        second = dec([f[1:] for f in feats])
    torch.testing.assert_close(both[0][1:], second[0], atol=1e-5, rtol=1e-5)


def test_equals_mmdet_msdeformattn_pixel_decoder():
    """Same weights (through the checkpoint converter) -> same outputs as mmdet 3.3's decoder."""
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict
    torch.manual_seed(0)
    ref = MODELS.build(ConfigDict(
        type='MSDeformAttnPixelDecoder', in_channels=IN_CHANNELS, strides=STRIDES, feat_channels=D,
        out_channels=16, num_outs=3, norm_cfg=dict(type='GN', num_groups=8), act_cfg=dict(type='ReLU'),
        encoder=dict(num_layers=2, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=D, num_heads=4, num_levels=3, num_points=2, dropout=0.0, batch_first=True),
            ffn_cfg=dict(embed_dims=D, feedforward_channels=48, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True)))),
        positional_encoding=dict(num_feats=D // 2, normalize=True))).eval()
    with torch.no_grad():  # non-trivial weights everywhere (MSDA's offset/weight layers start at 0)
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    prefix = 'panoptic_head.pixel_decoder.'
    converted, unmapped = convert_mmdet_to_m2f({prefix + k: v for k, v in ref.state_dict().items()})
    assert unmapped == []
    ours = _decoder().eval()
    ours.load_state_dict({k[len(prefix):]: v for k, v in converted.items()}, strict=True)
    feats = _feats(2, 72, 100)
    with torch.no_grad():
        ref_mask, ref_ms = ref(feats)
        our_mask, our_ms = ours(feats)
    torch.testing.assert_close(our_mask, ref_mask, atol=1e-5, rtol=1e-5)
    for a, b in zip(our_ms, ref_ms):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
