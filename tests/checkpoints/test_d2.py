"""detectron2 (official Mask2Former) checkpoints -> m2f_mm (m2f_mm/checkpoints/d2.py, d2_to_m2f.py).

The detectron2 side is ``tests/reference/d2_mask2former.py``, a re-creation of the official modules
with their exact key names: a random reference model converted with ``convert_d2_checkpoint`` must
give our model the same outputs.
"""
import copy
import json
import math
import os.path as osp
import pickle
from typing import Dict

import mmdet
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope

import m2f_mm.models.detector  # noqa: F401  registers M2FDetector / M2FHead / ...
import m2f_mm.models.head  # noqa: F401
from m2f_mm.checkpoints import (CheckpointFormatError, CheckpointMismatchError, convert_d2_checkpoint,
                                convert_mmdet_to_m2f, extract_d2_weights, load_d2_checkpoint, to_d2_layout)
from reference.d2_mask2former import (BasicStem, BottleneckBlock, D, D2MaskFormer, D2ResNet50, DEC_FFN,
                                     DEC_LAYERS, ENC_FFN, ENC_LAYERS, FrozenBatchNorm2d, HEADS, NUM_STUFF,
                                     NUM_THINGS, POINTS, QUERIES, R50_CHANNELS)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OUR_CFG = osp.join(REPO, 'configs', '_base_', 'models', 'm2f_r50.py')
MMDET_CFG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former',
                     'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py')


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-degenerate random values in every float parameter / buffer (positive BN variances)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if not tensor.is_floating_point() or name.endswith('empty_weight'):
                continue
            noise = torch.randn(tensor.shape, generator=gen)
            if name.endswith('running_var'):
                tensor.copy_(noise.abs() + 0.5)
            elif tensor.dim() > 1:
                fan_in = tensor[0].numel()
                tensor.copy_(noise / math.sqrt(fan_in))
            else:
                tensor.copy_(0.1 * noise + (1.0 if name.endswith('norm.weight') else 0.0))
    return module


# ============================================================================ our models
def tiny_cfg(depth: int = 50, num_things: int = NUM_THINGS, num_stuff: int = NUM_STUFF, queries: int = QUERIES,
             enforce_input_project: bool = False) -> Config:
    cfg = Config.fromfile(OUR_CFG)
    m = cfg.model
    m.backbone.update(depth=depth, init_cfg=None)
    in_channels = R50_CHANNELS if depth >= 50 else [64, 128, 256, 512]
    head = m.panoptic_head
    head.update(in_channels=in_channels, feat_channels=D, out_channels=D, num_queries=queries,
                num_things_classes=num_things, num_stuff_classes=num_stuff,
                enforce_decoder_input_project=enforce_input_project,
                positional_encoding=dict(num_feats=D // 2, normalize=True))
    head.criterion.num_classes = num_things + num_stuff
    head.pixel_decoder.positional_encoding = dict(num_feats=D // 2, normalize=True)
    head.pixel_decoder.encoder.num_layers = ENC_LAYERS
    head.pixel_decoder.encoder.layer_cfg.update(embed_dims=D, num_heads=HEADS, num_points=POINTS,
                                                feedforward_channels=ENC_FFN)
    head.transformer_decoder.num_layers = DEC_LAYERS
    head.transformer_decoder.layer_cfg.update(embed_dims=D, num_heads=HEADS, feedforward_channels=DEC_FFN)
    m.panoptic_fusion_head.update(num_things_classes=num_things, num_stuff_classes=num_stuff)
    return cfg


def build_ours(**kwargs) -> nn.Module:
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(tiny_cfg(**kwargs).model)
    return model.eval()


def our_outputs(model, images):
    with torch.no_grad():
        return model._forward(images)


@pytest.fixture(scope='module')
def d2_model():
    torch.manual_seed(0)
    return randomize_(D2MaskFormer(), seed=1).eval()


@pytest.fixture(scope='module')
def ours():
    return build_ours()


@pytest.fixture(scope='module')
def images():
    return torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))


def numpy_state(module_or_state) -> Dict[str, np.ndarray]:
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def write_pkl(path, weights, protocol=pickle.HIGHEST_PROTOCOL):
    with open(path, 'wb') as f:
        pickle.dump({'model': weights, '__author__': 'test', 'matching_heuristics': True}, f, protocol=protocol)
    return str(path)


# ============================================================================ tests: official layout
def test_reference_state_dict_has_the_official_key_names(d2_model):
    keys = set(d2_model.state_dict())
    for key in ['backbone.stem.conv1.weight', 'backbone.stem.conv1.norm.running_var',
                'backbone.res2.0.shortcut.norm.weight', 'backbone.res5.2.conv3.norm.bias',
                'sem_seg_head.pixel_decoder.input_proj.0.0.weight', 'sem_seg_head.pixel_decoder.input_proj.2.1.bias',
                'sem_seg_head.pixel_decoder.transformer.level_embed',
                'sem_seg_head.pixel_decoder.transformer.encoder.layers.0.self_attn.sampling_offsets.weight',
                'sem_seg_head.pixel_decoder.transformer.encoder.layers.0.linear2.bias',
                'sem_seg_head.pixel_decoder.adapter_1.weight', 'sem_seg_head.pixel_decoder.adapter_1.norm.weight',
                'sem_seg_head.pixel_decoder.layer_1.norm.bias', 'sem_seg_head.pixel_decoder.mask_features.bias',
                'sem_seg_head.predictor.transformer_cross_attention_layers.2.multihead_attn.in_proj_weight',
                'sem_seg_head.predictor.transformer_self_attention_layers.0.self_attn.out_proj.bias',
                'sem_seg_head.predictor.transformer_ffn_layers.1.norm.weight',
                'sem_seg_head.predictor.decoder_norm.weight', 'sem_seg_head.predictor.query_feat.weight',
                'sem_seg_head.predictor.level_embed.weight', 'sem_seg_head.predictor.mask_embed.layers.2.bias',
                'criterion.empty_weight']:
        assert key in keys, key
    # res5 (2048 channels) is input_proj[0], as in detectron2's transformer_in_channels[::-1]
    assert d2_model.state_dict()['sem_seg_head.pixel_decoder.input_proj.0.0.weight'].shape[1] == 2048
    assert not any('predictor.input_proj' in k for k in keys)  # widths equal -> nn.Sequential(), no weights


def test_official_model_outputs_are_reproduced(d2_model, ours, images):
    """The point of the converter: a detectron2 model's weights give our model the same outputs."""
    result = convert_d2_checkpoint(numpy_state(d2_model), target_state=ours.state_dict())
    assert result.unmapped_source_keys == [] and result.missing_target_keys == []
    assert result.dropped_source_keys == ['criterion.empty_weight']
    ours.load_state_dict(result.state_dict, strict=True)
    with torch.no_grad():
        ref_cls, ref_mask = d2_model(images)
    cls_sets, mask_sets = our_outputs(ours, images)
    assert len(cls_sets) == len(ref_cls) == DEC_LAYERS + 1
    for i, (a, b, c, d) in enumerate(zip(cls_sets, ref_cls, mask_sets, ref_mask)):
        scale = max(1.0, float(b.abs().max()), float(d.abs().max()))
        assert torch.allclose(a, b, atol=1e-4 * scale, rtol=0), f'class logits, set {i}: {(a - b).abs().max()}'
        assert torch.allclose(c, d, atol=1e-4 * scale, rtol=0), f'mask logits, set {i}: {(c - d).abs().max()}'
    # also: the backbone alone (stride in the 3x3 conv, FrozenBN -> eval BN)
    with torch.no_grad():
        ref_feats = d2_model.backbone(images)
        our_feats = ours.backbone(images)
    for ref, got in zip(ref_feats.values(), our_feats):
        assert torch.allclose(ref, got, atol=1e-4 * max(1.0, float(ref.abs().max())), rtol=0)


def test_every_source_tensor_lands_in_its_own_target(d2_model, ours):
    """Head tensors filled with distinct values: the mapping is a bijection onto the model and the
    detectron2 -> m2f_mm pairs are the documented ones."""
    state = {k: v for k, v in numpy_state(d2_model).items()}
    offset = 0
    for key in sorted(state):
        if key.startswith('sem_seg_head.'):
            n = state[key].size
            state[key] = (np.arange(n, dtype=np.float64) + offset).reshape(state[key].shape).astype(np.float32)
            offset += n
    assert offset < 2 ** 24  # exactly representable in float32
    result = convert_d2_checkpoint(state, target_state=ours.state_dict())
    first_value = {float(v.reshape(-1)[0]): k for k, v in state.items() if k.startswith('sem_seg_head.')}
    pairs = {}
    for dst, value in result.state_dict.items():
        if dst.startswith('panoptic_head.'):
            src = first_value[float(value.reshape(-1)[0])]
            assert np.array_equal(value.numpy(), state[src]), dst
            pairs[dst] = src
    assert sorted(pairs.values()) == sorted(k for k in state if k.startswith('sem_seg_head.'))  # bijection
    pd, pr = 'sem_seg_head.pixel_decoder.', 'sem_seg_head.predictor.'
    expected = {
        'pixel_decoder.input_projs.0.conv.weight': pd + 'input_proj.0.0.weight',  # stride 32 first
        'pixel_decoder.input_projs.2.gn.bias': pd + 'input_proj.2.1.bias',
        'pixel_decoder.level_embed.weight': pd + 'transformer.level_embed',
        'pixel_decoder.encoder.layers.0.self_attn.sampling_offsets.weight':
            pd + 'transformer.encoder.layers.0.self_attn.sampling_offsets.weight',
        'pixel_decoder.encoder.layers.0.norm2.bias': pd + 'transformer.encoder.layers.0.norm2.bias',
        'pixel_decoder.lateral_convs.0.conv.weight': pd + 'adapter_1.weight',
        'pixel_decoder.lateral_convs.0.gn.weight': pd + 'adapter_1.norm.weight',
        'pixel_decoder.output_convs.0.gn.bias': pd + 'layer_1.norm.bias',
        'pixel_decoder.mask_features.weight': pd + 'mask_features.weight',
        'transformer_decoder.layers.2.cross_attn.in_proj_weight':
            pr + 'transformer_cross_attention_layers.2.multihead_attn.in_proj_weight',
        'transformer_decoder.layers.2.norm1.weight': pr + 'transformer_cross_attention_layers.2.norm.weight',
        'transformer_decoder.layers.1.self_attn.out_proj.bias':
            pr + 'transformer_self_attention_layers.1.self_attn.out_proj.bias',
        'transformer_decoder.layers.1.norm2.bias': pr + 'transformer_self_attention_layers.1.norm.bias',
        'transformer_decoder.layers.0.linear1.weight': pr + 'transformer_ffn_layers.0.linear1.weight',
        'transformer_decoder.layers.0.norm3.weight': pr + 'transformer_ffn_layers.0.norm.weight',
        'transformer_decoder.decoder_norm.weight': pr + 'decoder_norm.weight',
        'query_feat.weight': pr + 'query_feat.weight', 'query_embed.weight': pr + 'query_embed.weight',
        'level_embed.weight': pr + 'level_embed.weight', 'class_embed.bias': pr + 'class_embed.bias',
        'mask_embed.layers.1.weight': pr + 'mask_embed.layers.1.weight',
    }
    for dst, src in expected.items():
        assert pairs['panoptic_head.' + dst] == src, dst


def test_in_proj_packing_is_q_k_v(ours):
    """Our attention splits in_proj_weight rows as nn.MultiheadAttention does: [q; k; v]."""
    attn = ours.panoptic_head.transformer_decoder.layers[0].cross_attn
    mha = nn.MultiheadAttention(D, HEADS, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.in_proj_weight)
        mha.in_proj_bias.copy_(torch.randn(3 * D))
        attn.in_proj_bias.copy_(mha.in_proj_bias)
        mha.out_proj.load_state_dict(attn.out_proj.state_dict())
        q, k, v = torch.randn(3, 2, 5, D).unbind(0)
        assert torch.allclose(attn(q, k, v), mha(q, k, v, need_weights=False)[0], atol=1e-5)


# ============================================================================ tests: round trips
def test_round_trip_head_and_resnet_is_identity(ours):
    state = ours.state_dict()
    d2 = to_d2_layout(state)
    assert 'criterion.empty_weight' in d2 and not any(k.endswith('num_batches_tracked') for k in d2)
    back = convert_d2_checkpoint(numpy_state(d2), target_state=state)
    assert list(back.state_dict) == list(state)
    for key, value in state.items():
        assert torch.equal(back.state_dict[key], value), key


def test_round_trip_resnet18_and_deep_stem():
    from mmdet.models.backbones import ResNet
    head = {k: v for k, v in to_d2_layout(build_ours(depth=18).state_dict()).items() if not k.startswith('backbone.')}
    for deep_stem in (False, True):  # deep stem = ResNetV1c (detectron2 DeepLab stem)
        net = ResNet(depth=18, deep_stem=deep_stem)
        state = {'backbone.' + k: v for k, v in net.state_dict().items()}
        d2 = to_d2_layout(state, head_prefix='panoptic_head.')
        if deep_stem:
            assert 'backbone.stem.conv3.norm.running_mean' in d2
        else:
            assert 'backbone.res2.0.conv2.norm.weight' in d2 and 'backbone.res3.0.shortcut.weight' in d2
        result = convert_d2_checkpoint({**head, **d2})
        for key, value in state.items():
            assert torch.equal(result.state_dict[key], value), key


def official_swin_shapes(embed_dim, depths, num_heads, window, mlp_ratio=4):
    """Key -> shape of the official SwinTransformer (Mask2Former backbone/swin.py) under ``backbone.``."""
    shapes = {'patch_embed.proj.weight': (embed_dim, 3, 4, 4), 'patch_embed.proj.bias': (embed_dim,),
              'patch_embed.norm.weight': (embed_dim,), 'patch_embed.norm.bias': (embed_dim,)}
    for i, (depth, heads) in enumerate(zip(depths, num_heads)):
        dim = embed_dim * 2 ** i
        for j in range(depth):
            b = f'layers.{i}.blocks.{j}.'
            shapes.update({b + 'norm1.weight': (dim,), b + 'norm1.bias': (dim,),
                           b + 'attn.relative_position_bias_table': ((2 * window - 1) ** 2, heads),
                           b + 'attn.relative_position_index': (window ** 2, window ** 2),
                           b + 'attn.qkv.weight': (3 * dim, dim), b + 'attn.qkv.bias': (3 * dim,),
                           b + 'attn.proj.weight': (dim, dim), b + 'attn.proj.bias': (dim,),
                           b + 'norm2.weight': (dim,), b + 'norm2.bias': (dim,),
                           b + 'mlp.fc1.weight': (mlp_ratio * dim, dim), b + 'mlp.fc1.bias': (mlp_ratio * dim,),
                           b + 'mlp.fc2.weight': (dim, mlp_ratio * dim), b + 'mlp.fc2.bias': (dim,)})
        if i < len(depths) - 1:
            shapes.update({f'layers.{i}.downsample.reduction.weight': (2 * dim, 4 * dim),
                           f'layers.{i}.downsample.norm.weight': (4 * dim,),
                           f'layers.{i}.downsample.norm.bias': (4 * dim,)})
        shapes.update({f'norm{i}.weight': (dim,), f'norm{i}.bias': (dim,)})
    return {'backbone.' + k: v for k, v in shapes.items()}


def official_relative_position_index(window):
    coords = torch.stack(torch.meshgrid([torch.arange(window), torch.arange(window)], indexing='ij'))
    flat = torch.flatten(coords, 1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


@pytest.fixture(scope='module')
def tiny_swin():
    from mmdet.models.backbones import SwinTransformer
    torch.manual_seed(3)
    swin = SwinTransformer(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=7,
                           out_indices=(0, 1, 2, 3))
    randomize_(swin, seed=4).eval()  # mmdet's SwinTransformer.train() returns None
    return swin


def test_swin_official_layout_round_trip_and_patch_merging(tiny_swin, ours):
    state = {'backbone.' + k: v for k, v in tiny_swin.state_dict().items()}
    head = {k: v for k, v in ours.state_dict().items() if k.startswith('panoptic_head.')}
    d2 = to_d2_layout({**state, **head})
    expected = official_swin_shapes(32, [2, 2, 2, 2], [1, 2, 4, 8], 7)
    assert {k: tuple(v.shape) for k, v in d2.items() if k.startswith('backbone.')} == expected
    # the buffer detectron2 saves equals the one mmdet computes
    assert torch.equal(d2['backbone.layers.1.blocks.1.attn.relative_position_index'],
                       official_relative_position_index(7))
    # identity round trip (incl. the PatchMerging channel re-ordering)
    target = {**state, **head}
    back = convert_d2_checkpoint(numpy_state(d2), target_state=target)
    for key, value in target.items():
        assert torch.equal(back.state_dict[key], value), key
    # functional: official PatchMerging (x0, x1, x2, x3 = (0,0), (1,0), (0,1), (1,1)) with the
    # detectron2 weights == mmdet's nn.Unfold PatchMerging with the converted ones
    merge = tiny_swin.stages[0].downsample
    x = torch.randn(2, 8 * 6, 32)
    xs = x.view(2, 8, 6, 32)
    cat = torch.cat([xs[:, 0::2, 0::2], xs[:, 1::2, 0::2], xs[:, 0::2, 1::2], xs[:, 1::2, 1::2]], -1).view(2, -1, 128)
    official = F.linear(F.layer_norm(cat, (128,), d2['backbone.layers.0.downsample.norm.weight'],
                                     d2['backbone.layers.0.downsample.norm.bias']),
                        d2['backbone.layers.0.downsample.reduction.weight'])
    with torch.no_grad():
        got, _ = merge(x, (8, 6))
    assert torch.allclose(got, official, atol=1e-5)


# ============================================================================ tests: vs the mmdet path
def test_same_outputs_as_the_mmdet_converter_path(tmp_path, images):
    """mmdet Mask2Former weights -> (a) convert_mmdet_to_m2f, (b) that -> detectron2 layout -> .pkl ->
    load_d2_checkpoint -> convert_d2_checkpoint. Both load strictly and give identical outputs."""
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref_cfg = Config.fromfile(MMDET_CFG)
        ref_cfg.model.backbone.update(depth=18, init_cfg=None)
        head = ref_cfg.model.panoptic_head
        head.update(in_channels=[64, 128, 256, 512], feat_channels=D, out_channels=D, num_queries=QUERIES,
                    positional_encoding=dict(num_feats=D // 2, normalize=True))
        head.pixel_decoder.positional_encoding = dict(num_feats=D // 2, normalize=True)
        head.pixel_decoder.encoder.num_layers = ENC_LAYERS
        enc = head.pixel_decoder.encoder.layer_cfg
        enc.self_attn_cfg.update(embed_dims=D, num_heads=HEADS, num_points=POINTS)
        enc.ffn_cfg.update(embed_dims=D, feedforward_channels=ENC_FFN)
        head.transformer_decoder.num_layers = DEC_LAYERS
        dec = head.transformer_decoder.layer_cfg
        dec.self_attn_cfg.update(embed_dims=D, num_heads=HEADS)
        dec.cross_attn_cfg.update(embed_dims=D, num_heads=HEADS)
        dec.ffn_cfg.update(embed_dims=D, feedforward_channels=DEC_FFN)
        ref = randomize_(MODELS.build(ref_cfg.model), seed=5)
    via_mmdet, unmapped = convert_mmdet_to_m2f(ref.state_dict())
    assert unmapped == []
    ours_a = build_ours(depth=18, num_things=80, num_stuff=53)
    ours_a.load_state_dict(via_mmdet, strict=True)

    path = write_pkl(tmp_path / 'model_final.pkl', numpy_state(to_d2_layout(via_mmdet)))
    ours_b = build_ours(depth=18, num_things=80, num_stuff=53)
    weights = extract_d2_weights(load_d2_checkpoint(path), path)
    result = convert_d2_checkpoint(weights, target_state=ours_b.state_dict(), source=path)
    ours_b.load_state_dict(result.state_dict, strict=True)
    for a, b in zip(ours_a.state_dict().values(), ours_b.state_dict().values()):
        assert torch.equal(a, b)
    out_a, out_b = our_outputs(ours_a, images), our_outputs(ours_b, images)
    for set_a, set_b in zip(out_a[0] + out_a[1], out_b[0] + out_b[1]):
        assert torch.equal(set_a, set_b)


# ============================================================================ tests: bad inputs
@pytest.mark.slow
def test_not_a_checkpoint_and_truncated_files(tmp_path, d2_model):
    not_dict = tmp_path / 'list.pkl'
    not_dict.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointFormatError, match=r'list\.pkl.*found a list'):
        extract_d2_weights(load_d2_checkpoint(str(not_dict)), str(not_dict))

    backbone_only = write_pkl(tmp_path / 'R-50.pkl', {'stem.conv1.weight': np.zeros((64, 3, 7, 7), np.float32)})
    with pytest.raises(CheckpointFormatError, match=r'R-50\.pkl: not a Mask2Former.*sem_seg_head.*stem\.conv1'):
        extract_d2_weights(load_d2_checkpoint(backbone_only), backbone_only)

    with pytest.raises(CheckpointFormatError, match='mmdet_to_m2f'):
        extract_d2_weights({'state_dict': {'panoptic_head.cls_embed.weight': torch.zeros(1)}, 'meta': {}}, 'x.pth')

    good = write_pkl(tmp_path / 'model_final.pkl', numpy_state(d2_model), protocol=2)  # py2-era protocol
    assert any(k.startswith('sem_seg_head.') for k in extract_d2_weights(load_d2_checkpoint(good)))
    data = open(good, 'rb').read()
    truncated = tmp_path / 'model_final_truncated.pkl'
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match=r'model_final_truncated\.pkl.*truncated'):
        load_d2_checkpoint(str(truncated))

    import datetime
    unsafe = tmp_path / 'unsafe.pkl'
    unsafe.write_bytes(pickle.dumps({'model': {'sem_seg_head.x': datetime.datetime(2020, 1, 1)}}))
    with pytest.raises(CheckpointFormatError, match=r"refusing to unpickle 'datetime.datetime'.*only numpy arrays"):
        load_d2_checkpoint(str(unsafe))
    assert load_d2_checkpoint(str(unsafe), trust_pickle=True)['model']['sem_seg_head.x'].year == 2020

    with pytest.raises(CheckpointFormatError, match='no "sem_seg_head'):
        convert_d2_checkpoint({'backbone.stem.conv1.weight': np.zeros(1)})


def test_class_and_query_count_mismatch_messages(d2_model):
    state = numpy_state(d2_model)  # 5 classes, 6 queries
    other_classes = build_ours(num_things=80, num_stuff=53).state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        convert_d2_checkpoint(state, target_state=other_classes, source='model_final_x.pkl')
    msg = str(err.value)
    assert 'model_final_x.pkl' in msg and '5 classes' in msg and '133' in msg
    assert 'model.panoptic_head.num_things_classes' in msg and 'things + stuff = 5' in msg

    other_queries = build_ours(queries=QUERIES + 4).state_dict()
    with pytest.raises(CheckpointMismatchError,
                       match=rf'{QUERIES} queries.*has {QUERIES + 4}.*model\.panoptic_head\.num_queries={QUERIES}'):
        convert_d2_checkpoint(state, target_state=other_queries)

    seg_target = {k.replace('panoptic_head.', 'decode_head.'): v for k, v in other_classes.items()}
    with pytest.raises(CheckpointMismatchError, match=r'model\.decode_head\.num_classes=5'):
        convert_d2_checkpoint(state, target_state=seg_target)


def test_shape_mismatch_names_both_keys_and_shapes(d2_model, ours):
    state = numpy_state(d2_model)
    key = 'sem_seg_head.predictor.transformer_ffn_layers.1.linear1.weight'
    state[key] = np.zeros((DEC_FFN + 1, D), np.float32)
    with pytest.raises(CheckpointMismatchError) as err:
        convert_d2_checkpoint(state, target_state=ours.state_dict())
    assert f'{key} [{DEC_FFN + 1}, {D}] -> panoptic_head.transformer_decoder.layers.1.linear1.weight [{DEC_FFN}, {D}]' \
        in str(err.value)


def test_missing_and_unmapped_keys_fail_unless_partial(d2_model, ours):
    state = numpy_state(d2_model)
    del state['sem_seg_head.predictor.decoder_norm.bias']
    state['sem_seg_head.predictor.something_new.weight'] = np.zeros(3, np.float32)
    state['extra_top_level'] = np.zeros(1, np.float32)
    target = ours.state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        convert_d2_checkpoint(state, target_state=target)
    msg = str(err.value)
    assert 'panoptic_head.transformer_decoder.decoder_norm.bias' in msg
    assert 'sem_seg_head.predictor.something_new.weight' in msg and '--partial' in msg

    result = convert_d2_checkpoint(state, target_state=target, partial=True)
    assert result.missing_target_keys == ['panoptic_head.transformer_decoder.decoder_norm.bias']
    assert sorted(result.unmapped_source_keys) == ['extra_top_level', 'sem_seg_head.predictor.something_new.weight']
    # without a target nothing fails, unmapped keys are still reported
    assert sorted(convert_d2_checkpoint(state).unmapped_source_keys) == sorted(result.unmapped_source_keys)


def test_backbone_and_depth_mismatches_are_explained(d2_model, ours, tiny_swin):
    state = numpy_state(d2_model)
    swin_target = {'backbone.' + k: v for k, v in tiny_swin.state_dict().items()}
    swin_target.update({k: v for k, v in ours.state_dict().items() if k.startswith('panoptic_head.')})
    with pytest.raises(CheckpointMismatchError, match=r'backbone differs.*ResNet-50'):
        convert_d2_checkpoint(state, target_state=swin_target)
    for key in list(state):
        if '_layers.2.' in key:  # drop the last decoder layer: 2 in the checkpoint, 3 in the config
            del state[key]
    with pytest.raises(CheckpointMismatchError, match=r'2 decoder layers, the config 3.*num_layers=2'):
        convert_d2_checkpoint(state, target_state=ours.state_dict())


def test_decoder_input_projection_mismatch_is_explained(ours):
    torch.manual_seed(0)
    d2 = D2MaskFormer(enforce_input_project=True)
    with pytest.raises(CheckpointMismatchError, match='enforce_decoder_input_project'):
        convert_d2_checkpoint(numpy_state(d2), target_state=ours.state_dict())
    with_proj = build_ours(enforce_input_project=True)
    result = convert_d2_checkpoint(numpy_state(d2), target_state=with_proj.state_dict())
    with_proj.load_state_dict(result.state_dict, strict=True)
    assert torch.equal(with_proj.panoptic_head.input_projs[1].weight,
                       d2.sem_seg_head.predictor.input_proj[1].weight)


# ============================================================================ tests: configs
@pytest.mark.parametrize('config, queries, classes, backbone', [
    ('m2f_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py', 200, 133, 'swin-l'),
    ('m2f_r50_8xb2-lsj-50e_coco.py', 100, 80, 'r50'),
])
def test_configs_have_the_official_architectures(config, queries, classes, backbone):
    """The configs for the official checkpoints build models with the official shapes (Swin-L:
    embed 192, depths 2-2-18-2, heads 6-12-24-48, window 12; detectron2 R50)."""
    from mmdet.registry import MODELS
    from m2f_mm.config import load_resolved
    cfg = load_resolved(osp.join(REPO, 'configs', config))  # class counts: the dataset's (COCO's METAINFO)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    d2 = to_d2_layout(model.state_dict())
    pr = 'sem_seg_head.predictor.'
    assert tuple(d2[pr + 'query_feat.weight'].shape) == (queries, 256)
    assert tuple(d2[pr + 'class_embed.weight'].shape) == (classes + 1, 256)
    assert len({k.split('.')[3] for k in d2 if k.startswith(pr + 'transformer_ffn_layers.')}) == 9
    assert not any(k.startswith(pr + 'input_proj') for k in d2)
    got = {k: tuple(v.shape) for k, v in d2.items() if k.startswith('backbone.')}
    if backbone == 'swin-l':
        assert got == official_swin_shapes(192, [2, 2, 18, 2], [6, 12, 24, 48], 12)
    else:
        assert got == {'backbone.' + k: tuple(v.shape) for k, v in D2ResNet50().state_dict().items()}
    if cfg.model.test_cfg.get('instance_on') and not cfg.model.test_cfg.get('panoptic_on'):
        assert cfg.model.panoptic_head.num_stuff_classes == 0 and model.panoptic_head.criterion.num_classes == 80


# ============================================================================ tests: CLI
def _cli():
    import importlib.util
    spec = importlib.util.spec_from_file_location('d2_to_m2f', osp.join(REPO, 'tools', 'model_converters',
                                                                       'd2_to_m2f.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cli(tmp_path, d2_model, capsys):
    cli = _cli()
    cfg_path = str(tmp_path / 'tiny_cfg.py')
    tiny_cfg().dump(cfg_path)
    src = write_pkl(tmp_path / 'model_final_abc123.pkl', numpy_state(d2_model))
    dst = str(tmp_path / 'converted.pth')

    assert cli.main([src, dst, '--config', cfg_path]) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    model = build_ours()
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert 'CC BY-NC 4.0' in ckpt['meta']['license']
    assert ckpt['meta']['num_classes'] == NUM_THINGS + NUM_STUFF and ckpt['meta']['num_queries'] == QUERIES

    # without a config: no checks, a summary with the counts
    assert cli.main([src, str(tmp_path / 'noconf.pth')]) == 0
    out = capsys.readouterr().out
    assert f'{NUM_THINGS + NUM_STUFF} classes' in out and f'{QUERIES} queries' in out

    # wrong query count: exit 1 with the fix, which then works through --cfg-options
    assert cli.main([src, dst, '--config', cfg_path, '--cfg-options', 'model.panoptic_head.num_queries=9']) == 1
    assert f'model.panoptic_head.num_queries={QUERIES}' in capsys.readouterr().err
    fixed = f'model.panoptic_head.num_queries={QUERIES}'
    assert cli.main([src, dst, '--config', cfg_path, '--cfg-options', fixed]) == 0

    bad = tmp_path / 'broken.pkl'
    bad.write_bytes(open(src, 'rb').read()[:1000])
    assert cli.main([str(bad), dst]) == 2
    assert 'broken.pkl' in capsys.readouterr().err

    # --things-first: the classifier rows follow the annotation file's things-first order
    n = NUM_THINGS + NUM_STUFF
    cats = [dict(id=i, name=f'c{i}', isthing=int(i % 2 == 1)) for i in range(n)]  # interleaved, stuff first
    ann = tmp_path / 'panoptic_val.json'
    ann.write_text(json.dumps(dict(images=[], annotations=[], categories=cats)))
    assert cli.main([src, dst, '--config', cfg_path, '--things-first', str(ann)]) == 0
    reordered = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    order = [i for i in range(n) if i % 2 == 1] + [i for i in range(n) if i % 2 == 0] + [n]
    for wb in ('weight', 'bias'):
        key = 'panoptic_head.class_embed.' + wb
        assert torch.equal(reordered[key], ckpt['state_dict'][key][order])
    ann.write_text(json.dumps(dict(categories=cats[:-1])))
    assert cli.main([src, dst, '--config', cfg_path, '--things-first', str(ann)]) == 1
    assert f'has {n - 1} categories but the checkpoint has {n} classes' in capsys.readouterr().err

    # a .pth holding the same dict (tensors) is accepted too
    pth = str(tmp_path / 'model_final.pth')
    torch.save({'model': d2_model.state_dict(), 'iteration': 1}, pth)
    assert cli.main([pth, dst, '--config', cfg_path]) == 0
