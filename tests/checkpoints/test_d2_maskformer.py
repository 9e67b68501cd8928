"""Official MaskFormer checkpoints (facebookresearch/MaskFormer, detectron2) -> m2f_mm's MaskFormer layout
(m2f_mm/checkpoints/d2.py, tools/model_converters/d2_to_m2f.py).

The detectron2 side is ``tests/reference/d2_maskformer.py`` (the official modules with their attribute
names, checked here against a key/shape list written out by hand); the m2f_mm side is the
``M2FMaskFormerHead`` state-dict layout, also written out by hand below. Neither uses the converter's tables.
"""
import importlib.util
import os.path as osp
import pickle
import re
from typing import Dict, Optional, Set

import numpy as np
import pytest
import torch

from m2f_mm.checkpoints import (CheckpointFormatError, CheckpointMismatchError, convert_d2_checkpoint,
                                d2_head_summary, d2_model_kind, extract_d2_weights, load_d2_checkpoint,
                                maskformer_head_settings, to_d2_layout)
from reference.d2_maskformer import (D, DEC_LAYERS, ENC_LAYERS, FFN, HEADS, IN_CHANNELS, NUM_CLASSES, QUERIES,
                                     D2MaskFormerV1, official_maskformer_shapes)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PIXEL_DECODER, PREDICTOR = 'sem_seg_head.pixel_decoder.', 'sem_seg_head.predictor.'
KINDS = pytest.mark.parametrize('with_encoder', [False, True], ids=['BasePixelDecoder', 'TransformerEncoder'])


def official_state(with_encoder: bool, seed: int = 0, **kwargs) -> Dict[str, torch.Tensor]:
    """A random official MaskFormer head (+ criterion), every float entry distinct."""
    torch.manual_seed(seed)
    state = D2MaskFormerV1(with_encoder=with_encoder, **kwargs).state_dict()
    offset = 0
    for key in sorted(state):
        if key.startswith('sem_seg_head.'):
            n = state[key].numel()
            state[key] = (torch.arange(n, dtype=torch.float64) + offset).reshape(state[key].shape).float()
            offset += n
    assert offset < 2 ** 24  # exactly representable in float32
    return state


def our_layout(with_encoder: bool, prefix: str = 'panoptic_head.', levels: int = len(IN_CHANNELS),
               enc_layers: int = ENC_LAYERS, dec_layers: int = DEC_LAYERS,
               input_proj: Optional[bool] = None) -> Set[str]:
    """M2FMaskFormerHead's state-dict keys as the layout specifies them (conv + GN blocks, DETR layers);
    ``input_proj`` defaults to the official widths: only without an encoder (res5, 40 channels != D)."""
    wb = ('weight', 'bias')
    mha = ('in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias')
    keys = set()
    for i in range(levels - 1):
        for block in ('lateral_convs', 'output_convs'):
            keys |= {f'pixel_decoder.{block}.{i}.conv.weight'} | {f'pixel_decoder.{block}.{i}.gn.{x}' for x in wb}
    last = 'encoder_out_proj' if with_encoder else 'last_feat_conv'
    keys |= {f'pixel_decoder.{last}.conv.weight'} | {f'pixel_decoder.{last}.gn.{x}' for x in wb}
    if with_encoder:
        keys |= {f'pixel_decoder.encoder_in_proj.{x}' for x in wb}
        for j in range(enc_layers):
            keys |= {f'pixel_decoder.encoder.layers.{j}.self_attn.{x}' for x in mha}
            keys |= {f'pixel_decoder.encoder.layers.{j}.{m}.{x}' for m in ('linear1', 'linear2', 'norm1', 'norm2')
                     for x in wb}
    keys |= {f'pixel_decoder.mask_features.{x}' for x in wb}
    if (not with_encoder) if input_proj is None else input_proj:
        keys |= {f'input_proj.{x}' for x in wb}
    keys.add('query_embed.weight')
    for k in range(dec_layers):
        keys |= {f'transformer_decoder.layers.{k}.{a}.{x}' for a in ('self_attn', 'cross_attn') for x in mha}
        keys |= {f'transformer_decoder.layers.{k}.{m}.{x}' for m in ('linear1', 'linear2', 'norm1', 'norm2', 'norm3')
                 for x in wb}
    keys |= {f'transformer_decoder.decoder_norm.{x}' for x in wb} | {f'class_embed.{x}' for x in wb}
    keys |= {f'mask_embed.layers.{i}.{x}' for i in range(3) for x in wb}
    return {prefix + k for k in keys}


def write_pkl(path, weights) -> str:
    with open(path, 'wb') as f:
        pickle.dump({'model': {k: v.numpy() for k, v in weights.items()}, '__author__': 'test'}, f)
    return str(path)


# ============================================================================ the reference itself
@KINDS
def test_reference_has_the_official_keys_and_shapes(with_encoder):
    """The re-created modules' state dict == the upstream layout written out by hand."""
    torch.manual_seed(0)
    state = D2MaskFormerV1(with_encoder=with_encoder).state_dict()
    got = {k: tuple(v.shape) for k, v in state.items() if k.startswith('sem_seg_head.')}
    assert got == official_maskformer_shapes(IN_CHANNELS, NUM_CLASSES, with_encoder)
    assert tuple(state['criterion.empty_weight'].shape) == (NUM_CLASSES + 1,)
    # the predictor's own encoder is empty (ENC_LAYERS: 0) and has no norm (PRE_NORM: False)
    assert not any(k.startswith(PREDICTOR + 'transformer.encoder.') for k in state)


# ============================================================================ conversion
@KINDS
def test_every_key_maps_to_the_layout_with_the_same_tensor(with_encoder):
    state = official_state(with_encoder)
    state['pixel_mean'] = torch.zeros(3, 1, 1)
    state['pixel_std'] = torch.ones(3, 1, 1)
    result = convert_d2_checkpoint(state)
    assert result.unmapped_source_keys == []
    assert sorted(result.dropped_source_keys) == ['criterion.empty_weight', 'pixel_mean', 'pixel_std']
    assert set(result.state_dict) == our_layout(with_encoder)
    # tensors pass through untouched (the same objects) and each source lands once
    ids = {id(v): k for k, v in state.items()}
    sources = [ids[id(v)] for v in result.state_dict.values()]
    assert sorted(sources) == sorted(k for k in state if k.startswith('sem_seg_head.'))

    n = len(IN_CHANNELS)
    last = 'encoder_out_proj' if with_encoder else 'last_feat_conv'
    expected = {
        'pixel_decoder.lateral_convs.0.conv.weight': PIXEL_DECODER + 'adapter_1.weight',  # res2, finest first
        'pixel_decoder.lateral_convs.0.gn.bias': PIXEL_DECODER + 'adapter_1.norm.bias',
        f'pixel_decoder.lateral_convs.{n - 2}.conv.weight': PIXEL_DECODER + f'adapter_{n - 1}.weight',
        'pixel_decoder.output_convs.0.conv.weight': PIXEL_DECODER + 'layer_1.weight',
        f'pixel_decoder.output_convs.{n - 2}.gn.weight': PIXEL_DECODER + f'layer_{n - 1}.norm.weight',
        f'pixel_decoder.{last}.conv.weight': PIXEL_DECODER + f'layer_{n}.weight',
        f'pixel_decoder.{last}.gn.bias': PIXEL_DECODER + f'layer_{n}.norm.bias',
        'pixel_decoder.mask_features.bias': PIXEL_DECODER + 'mask_features.bias',
        'query_embed.weight': PREDICTOR + 'query_embed.weight',
        'transformer_decoder.layers.1.self_attn.in_proj_weight':
            PREDICTOR + 'transformer.decoder.layers.1.self_attn.in_proj_weight',
        'transformer_decoder.layers.0.cross_attn.out_proj.bias':
            PREDICTOR + 'transformer.decoder.layers.0.multihead_attn.out_proj.bias',
        'transformer_decoder.layers.1.norm1.weight': PREDICTOR + 'transformer.decoder.layers.1.norm1.weight',
        'transformer_decoder.layers.1.norm2.bias': PREDICTOR + 'transformer.decoder.layers.1.norm2.bias',
        'transformer_decoder.layers.0.norm3.weight': PREDICTOR + 'transformer.decoder.layers.0.norm3.weight',
        'transformer_decoder.layers.0.linear2.weight': PREDICTOR + 'transformer.decoder.layers.0.linear2.weight',
        'transformer_decoder.decoder_norm.weight': PREDICTOR + 'transformer.decoder.norm.weight',
        'class_embed.bias': PREDICTOR + 'class_embed.bias',
        'mask_embed.layers.2.weight': PREDICTOR + 'mask_embed.layers.2.weight',
    }
    if with_encoder:
        expected.update({
            'pixel_decoder.encoder_in_proj.weight': PIXEL_DECODER + 'input_proj.weight',
            'pixel_decoder.encoder.layers.1.self_attn.in_proj_bias':
                PIXEL_DECODER + 'transformer.encoder.layers.1.self_attn.in_proj_bias',
            'pixel_decoder.encoder.layers.0.norm2.weight': PIXEL_DECODER + 'transformer.encoder.layers.0.norm2.weight',
        })
    else:  # res5 (40 channels) != D: the predictor projects it
        expected['input_proj.weight'] = PREDICTOR + 'input_proj.weight'
    for dst, src in expected.items():
        assert result.state_dict['panoptic_head.' + dst] is state[src], dst

    # numpy input (a .pkl): equal values; the seg prefix on request
    seg = convert_d2_checkpoint({k: v.numpy() for k, v in state.items()}, head_prefix='decode_head.')
    assert set(seg.state_dict) == our_layout(with_encoder, prefix='decode_head.')
    for key, value in result.state_dict.items():
        assert torch.equal(seg.state_dict['decode_head.' + key[len('panoptic_head.'):]], value), key


@KINDS
def test_round_trip_back_to_the_official_layout(with_encoder):
    state = official_state(with_encoder)
    converted = convert_d2_checkpoint(state).state_dict
    back = to_d2_layout(converted)
    assert set(back) == set(state)
    for key, value in state.items():
        assert torch.equal(back[key], value), key  # incl. criterion.empty_weight (ones, 0.1 for no-object)
    # and forward again
    again = convert_d2_checkpoint(back).state_dict
    assert list(again) == list(converted)


def test_encoder_decoder_with_enforced_input_projection():
    """Same width (encoder output D -> decoder D) with ENFORCE_INPUT_PROJ: the projection is kept."""
    state = official_state(True, enforce_input_project=True)
    assert tuple(state[PREDICTOR + 'input_proj.weight'].shape) == (D, D, 1, 1)
    summary = d2_head_summary(state)
    assert summary['decoder_input_proj'] and summary['transformer_in_feature'] == 'transformer_encoder'
    assert 'enforce_decoder_input_project=True' in maskformer_head_settings(summary)
    converted = convert_d2_checkpoint(state).state_dict
    assert set(converted) == our_layout(True, input_proj=True)
    assert converted['panoptic_head.input_proj.weight'] is state[PREDICTOR + 'input_proj.weight']
    back = to_d2_layout(converted)
    assert all(torch.equal(back[k], v) for k, v in state.items())


def test_files_without_the_pixel_decoder_prefix():
    """Heads saved before MaskFormerHead's version 2 keep the pixel decoder directly under sem_seg_head.
    (the official loader moves them); they convert to the same state dict."""
    state = official_state(True)
    old = {k.replace('sem_seg_head.pixel_decoder.', 'sem_seg_head.'): v for k, v in state.items()}
    assert 'sem_seg_head.adapter_1.weight' in old and 'sem_seg_head.transformer.encoder.layers.0.linear1.bias' in old
    result = convert_d2_checkpoint(old)
    assert result.unmapped_source_keys == []
    assert {k: id(v) for k, v in result.state_dict.items()} == \
        {k: id(v) for k, v in convert_d2_checkpoint(state).state_dict.items()}
    assert d2_head_summary(old) == d2_head_summary(state)


def test_backbone_keys_convert_as_for_mask2former():
    state = official_state(False)
    bb = {'backbone.stem.conv1.weight': torch.zeros(4, 3, 7, 7),
          'backbone.res2.0.conv1.weight': torch.zeros(2, 4, 1, 1),
          'backbone.res2.0.shortcut.weight': torch.zeros(8, 4, 1, 1)}
    for name, c in (('stem.conv1', 4), ('res2.0.conv1', 2), ('res2.0.shortcut', 8)):
        bb.update({f'backbone.{name}.norm.{x}': torch.ones(c) for x in
                   ('weight', 'bias', 'running_mean', 'running_var')})
    result = convert_d2_checkpoint({**state, **bb})
    assert result.unmapped_source_keys == []
    out = result.state_dict
    assert out['backbone.conv1.weight'] is bb['backbone.stem.conv1.weight']
    assert out['backbone.layer1.0.downsample.1.running_var'] is bb['backbone.res2.0.shortcut.norm.running_var']
    assert int(out['backbone.layer1.0.bn1.num_batches_tracked']) == 0


# ============================================================================ detection and summary
def test_kind_detection_and_summary():
    base, enc = official_state(False), official_state(True)
    assert d2_model_kind(base) == d2_model_kind(enc) == 'MaskFormer'
    m2f_keys = {PREDICTOR + 'query_feat.weight': np.zeros((6, 8)), PREDICTOR + 'query_embed.weight': np.zeros((6, 8)),
                PREDICTOR + 'transformer_ffn_layers.0.linear1.weight': np.zeros((4, 8))}
    assert d2_model_kind(m2f_keys) == 'Mask2Former'
    assert d2_head_summary(m2f_keys)['model'] == 'Mask2Former'

    s = d2_head_summary(enc)
    assert s == dict(model='MaskFormer', num_classes=NUM_CLASSES, num_queries=QUERIES, num_decoder_layers=DEC_LAYERS,
                     hidden_dim=D, pixel_decoder='TransformerEncoderPixelDecoder', num_encoder_layers=ENC_LAYERS,
                     num_predictor_encoder_layers=0, num_levels=len(IN_CHANNELS), decoder_input_proj=False,
                     memory_channels=D, transformer_in_feature='transformer_encoder')
    settings = maskformer_head_settings(s)
    assert f'num_queries={QUERIES}' in settings and f'transformer_decoder.num_layers={DEC_LAYERS}' in settings
    assert f'pixel_decoder.encoder=dict(num_layers={ENC_LAYERS}' in settings
    assert 'enforce_decoder_input_project=False' in settings

    s = d2_head_summary(base)
    assert (s['pixel_decoder'], s['num_encoder_layers'], s['transformer_in_feature']) == ('BasePixelDecoder', 0, 'res5')
    assert s['decoder_input_proj'] and s['memory_channels'] == IN_CHANNELS[-1]
    settings = maskformer_head_settings(s)
    assert 'pixel_decoder.encoder=None' in settings and 'enforce_decoder_input_project=False' in settings


# ============================================================================ refused variants, bad files
def _one_line_error(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as err:
        fn(*args, **kwargs)
    msg = str(err.value)
    assert '\n' not in msg, msg
    return msg


@pytest.mark.parametrize('variant, kwargs, pattern', [
    ('predictor encoder', dict(predictor_enc_layers=1),
     r'transformer encoder of 1 layer.*ENC_LAYERS: 1.*ENC_LAYERS: 0'),
    ('pre-norm', dict(pre_norm=True), r'PRE_NORM: True'),
    ('PerPixelBaseline+', dict(mask_classification=False), r'no class_embed.*PerPixelBaseline\+'),
])
def test_variants_m2f_mm_cannot_hold_stop_with_one_line(variant, kwargs, pattern):
    state = official_state(False, **kwargs)
    msg = _one_line_error(CheckpointFormatError, convert_d2_checkpoint, state, source='model_final_x.pkl')
    assert msg.startswith('model_final_x.pkl: ') and re.search(pattern, msg), msg


def test_encoder_whose_output_the_decoder_does_not_read_and_per_pixel_baseline():
    state = official_state(True)
    state[PREDICTOR + 'input_proj.weight'] = torch.zeros(D, IN_CHANNELS[-1], 1, 1)  # TRANSFORMER_IN_FEATURE: res5
    state[PREDICTOR + 'input_proj.bias'] = torch.zeros(D)
    msg = _one_line_error(CheckpointFormatError, convert_d2_checkpoint, state)
    assert 'reads res5' in msg and 'transformer_encoder' in msg
    baseline = {PIXEL_DECODER + 'mask_features.weight': torch.zeros(D, D, 3, 3),
                PREDICTOR + 'weight': torch.zeros(5, D, 1, 1)}
    assert 'per-pixel baseline' in _one_line_error(CheckpointFormatError, convert_d2_checkpoint, baseline)


def test_truncated_and_garbage_files(tmp_path):
    good = write_pkl(tmp_path / 'model_final_good.pkl', official_state(True))
    assert d2_model_kind(extract_d2_weights(load_d2_checkpoint(good))) == 'MaskFormer'
    data = open(good, 'rb').read()
    truncated = tmp_path / 'model_final_cut.pkl'
    truncated.write_bytes(data[:len(data) // 3])
    assert 'truncated' in _one_line_error(CheckpointFormatError, load_d2_checkpoint, str(truncated))
    garbage = tmp_path / 'garbage.pkl'
    garbage.write_bytes(bytes(range(256)) * 8)
    assert 'garbage.pkl' in _one_line_error(CheckpointFormatError, load_d2_checkpoint, str(garbage))


# ============================================================================ checks against a target
def test_mismatch_messages_say_what_to_set():
    enc, base = official_state(True), official_state(False)
    target_enc = convert_d2_checkpoint(enc).state_dict
    target_base = convert_d2_checkpoint(base).state_dict
    assert list(convert_d2_checkpoint(enc, target_state=target_enc).state_dict) == list(target_enc)

    with pytest.raises(CheckpointMismatchError, match=rf'pixel_decoder\.encoder=dict\(num_layers={ENC_LAYERS}'):
        convert_d2_checkpoint(enc, target_state={k: v for k, v in target_base.items()
                                                 if not k.startswith('panoptic_head.input_proj.')})
    with pytest.raises(CheckpointMismatchError, match=r'BasePixelDecoder.*pixel_decoder\.encoder=None'):
        convert_d2_checkpoint(base, target_state={**target_enc, 'panoptic_head.input_proj.weight':
                                                  target_base['panoptic_head.input_proj.weight'],
                                                  'panoptic_head.input_proj.bias':
                                                  target_base['panoptic_head.input_proj.bias']})
    one_more = dict(target_enc)
    for key in [k for k in target_enc if '.encoder.layers.1.' in k]:
        one_more[key.replace('.layers.1.', '.layers.2.')] = target_enc[key]
    with pytest.raises(CheckpointMismatchError, match=rf'encoder has {ENC_LAYERS} layers, the config\'s 3.*'
                                                      rf'encoder\.num_layers={ENC_LAYERS}'):
        convert_d2_checkpoint(enc, target_state=one_more)
    no_dec1 = {k: v for k, v in target_enc.items() if '.transformer_decoder.layers.1.' not in k}
    with pytest.raises(CheckpointMismatchError, match=rf'{DEC_LAYERS} decoder layers, the config 1'):
        convert_d2_checkpoint(enc, target_state=no_dec1)
    with pytest.raises(CheckpointMismatchError, match='enforce_decoder_input_project'):
        convert_d2_checkpoint(official_state(True, enforce_input_project=True), target_state=target_enc)

    m2f_target = {'panoptic_head.' + k: v for k, v in (('query_feat.weight', torch.zeros(QUERIES, D)),
                                                        ('query_embed.weight', torch.zeros(QUERIES, D)),
                                                        ('pixel_decoder.input_projs.0.conv.weight', torch.zeros(1)))}
    with pytest.raises(CheckpointMismatchError, match='checkpoint is MaskFormer, the config builds Mask2Former'):
        convert_d2_checkpoint(enc, target_state=m2f_target)

    more_queries = dict(target_enc, **{'panoptic_head.query_embed.weight': torch.zeros(QUERIES + 1, D)})
    with pytest.raises(CheckpointMismatchError, match=rf'{QUERIES} queries.*num_queries={QUERIES}'):
        convert_d2_checkpoint(enc, target_state=more_queries)
    seg_target = {k.replace('panoptic_head.', 'decode_head.'): v for k, v in target_enc.items()}
    seg_target['decode_head.class_embed.weight'] = torch.zeros(20, D)
    with pytest.raises(CheckpointMismatchError,
                       match=rf'{NUM_CLASSES} classes.*decode_head\.num_classes={NUM_CLASSES}'):
        convert_d2_checkpoint(enc, target_state=seg_target)


# ============================================================================ CLI
def _cli():
    spec = importlib.util.spec_from_file_location('d2_to_m2f', osp.join(REPO, 'tools', 'model_converters',
                                                                       'd2_to_m2f.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_names_the_model_and_the_head_settings(tmp_path, capsys):
    cli = _cli()
    src = write_pkl(tmp_path / 'model_final_6f60dc.pkl', official_state(True))
    dst = str(tmp_path / 'maskformer.pth')
    assert cli.main([src, dst]) == 0
    out = capsys.readouterr().out
    assert f'MaskFormer checkpoint, {NUM_CLASSES} classes, {QUERIES} queries, {DEC_LAYERS} decoder layers' in out
    assert f'pixel decoder TransformerEncoderPixelDecoder with {ENC_LAYERS} encoder layers' in out
    assert 'decoder reads transformer_encoder' in out
    assert f'M2FMaskFormerHead: num_queries={QUERIES}' in out and 'pixel_decoder.encoder=dict(' in out
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(ckpt['state_dict']) == our_layout(True)
    assert ckpt['meta']['model'] == 'MaskFormer' and 'facebookresearch/MaskFormer' in ckpt['meta']['license']
    assert 'CC BY-NC 4.0' in ckpt['meta']['license'] and ckpt['meta']['num_classes'] == NUM_CLASSES

    base = write_pkl(tmp_path / 'model_final_d8dbeb.pkl', official_state(False))
    assert cli.main([base, dst, '--head-prefix', 'decode_head.']) == 0
    out = capsys.readouterr().out
    assert 'pixel decoder BasePixelDecoder, decoder reads res5 (40 channels)' in out
    assert 'pixel_decoder.encoder=None' in out
    assert set(torch.load(dst, map_location='cpu', weights_only=True)['state_dict']) == \
        our_layout(False, prefix='decode_head.')

    refused = write_pkl(tmp_path / 'enc_layers.pkl', official_state(False, predictor_enc_layers=2))
    assert cli.main([refused, dst]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'ENC_LAYERS: 2' in err[0]

    cut = tmp_path / 'cut.pkl'
    cut.write_bytes(open(src, 'rb').read()[:2000])
    assert cli.main([str(cut), dst]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'cut.pkl' in err[0] and 'truncated' in err[0]


# ============================================================================ into the real head
def _randomized(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-degenerate random weights (matrices ~ 1/sqrt(fan_in), norms around 1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point() or name.endswith('empty_weight'):
                continue
            noise = torch.randn(tensor.shape, generator=gen)
            if tensor.dim() > 1:
                tensor.copy_(noise / tensor[0].numel() ** 0.5)
            else:
                tensor.copy_(0.1 * noise + (1.0 if 'norm' in name and name.endswith('weight') else 0.0))
    return module.eval()


def _tiny_head_cfg(with_encoder: bool, seg: bool) -> dict:
    layer = dict(embed_dims=D, num_heads=HEADS, feedforward_channels=FFN, dropout=0.1)
    cfg = dict(type='M2FMaskFormerSegHead' if seg else 'M2FMaskFormerHead', in_channels=IN_CHANNELS,
               feat_channels=D, out_channels=D, num_queries=QUERIES,
               pixel_decoder=dict(type='M2FMaskFormerPixelDecoder',
                                  encoder=dict(num_layers=ENC_LAYERS, layer_cfg=layer) if with_encoder else None),
               positional_encoding=dict(num_feats=D // 2, normalize=True),
               transformer_decoder=dict(type='M2FDETRDecoder', num_layers=DEC_LAYERS, layer_cfg=layer), criterion=None)
    cfg.update(dict(num_classes=NUM_CLASSES) if seg else dict(num_things_classes=3, num_stuff_classes=1))
    return cfg


@pytest.mark.parametrize('with_encoder, seg', [(False, False), (True, False), (False, True)],
                         ids=['BasePixelDecoder', 'TransformerEncoder', 'BasePixelDecoder-seg'])
def test_loads_strictly_into_M2FMaskFormerHead_and_gives_the_official_outputs(with_encoder, seg):
    """A random official head, converted, loads with strict=True into the head built from a config with the
    matching shapes (the settings the summary prints), and reproduces the official prediction sets."""
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope
    import m2f_mm.models.maskformer_head  # noqa: F401  registers M2FMaskFormerHead / M2FMaskFormerSegHead
    if seg:
        import mmseg.models  # noqa: F401
        from mmseg.registry import MODELS
    else:
        import mmdet.models  # noqa: F401
        from mmdet.registry import MODELS
    torch.manual_seed(0)
    official = D2MaskFormerV1(with_encoder=with_encoder)
    _randomized(official, seed=1)
    summary = d2_head_summary(official.state_dict())
    settings = maskformer_head_settings(summary)
    assert ('pixel_decoder.encoder=None' in settings) != with_encoder
    with DefaultScope.overwrite_default_scope('mmseg' if seg else 'mmdet'):
        head = MODELS.build(ConfigDict(_tiny_head_cfg(with_encoder, seg))).eval()
    prefix = 'decode_head.' if seg else 'panoptic_head.'
    target = {prefix + k: v for k, v in head.state_dict().items()}
    result = convert_d2_checkpoint(official.state_dict(), target_state=target)
    assert result.unmapped_source_keys == [] and result.missing_target_keys == []
    head.load_state_dict({k[len(prefix):]: v for k, v in result.state_dict.items()}, strict=True)

    gen = torch.Generator().manual_seed(2)
    feats = [torch.randn(2, c, 64 // s, 96 // s, generator=gen) for c, s in zip(IN_CHANNELS, (4, 8, 16, 32))]
    with torch.no_grad():
        ref_cls, ref_masks = official(feats)
        cls_sets, mask_sets = head(feats, None)
    assert len(cls_sets) == len(ref_cls) == DEC_LAYERS
    for i, (a, b, c, d) in enumerate(zip(cls_sets, ref_cls, mask_sets, ref_masks)):
        assert a.shape == b.shape and c.shape == d.shape, i
        scale = max(1.0, float(b.abs().max()), float(d.abs().max()))
        assert torch.allclose(a, b, atol=1e-4 * scale, rtol=0), f'class logits, set {i}: {(a - b).abs().max()}'
        assert torch.allclose(c, d, atol=1e-4 * scale, rtol=0), f'mask logits, set {i}: {(c - d).abs().max()}'


# ============================================================================ docs
def test_documented_commands_parse_and_the_shown_output_is_what_the_converter_prints():
    """docs/official_checkpoints.md's MaskFormer section: its convert commands are valid d2_to_m2f.py calls
    and the printed summary it shows is the converter's for a file of the official COCO R50 model's
    shapes (zero-stride arrays: the summary reads shapes only)."""
    import shlex
    from reference.d2_mask2former import D2ResNet50
    from reference.d2_maskformer import official_maskformer_shapes
    page = open(osp.join(REPO, 'docs', 'official_checkpoints.md')).read()
    section = page[page.index('\n## Official MaskFormer checkpoints\n'):]
    blocks = re.findall(r'^```(\w*)\n(.*?)^```$', section, re.S | re.M)
    lines = [line.strip() for lang, code in blocks if lang == 'bash'
             for line in code.replace('\\\n', ' ').splitlines()]
    calls = [line for line in lines if line.startswith('python tools/model_converters/d2_to_m2f.py ')]
    assert len(calls) == 2
    cli = _cli()
    for call in calls:
        args = cli.parse_args(shlex.split(call)[2:])
        assert args.config is None or osp.isfile(osp.join(REPO, args.config)), args.config

    shown = next(code for lang, code in blocks if lang == 'text').splitlines()
    shapes = official_maskformer_shapes([256, 512, 1024, 2048], 133, True, hidden=256, conv_dim=256, mask_dim=256,
                                        queries=100, dec_layers=6, enc_layers=6, ffn=2048)
    weights = {k: np.broadcast_to(np.float32(0), s) for k, s in shapes.items()}
    weights.update({'backbone.' + k: np.broadcast_to(np.float32(0), tuple(v.shape))
                    for k, v in D2ResNet50().state_dict().items()})
    assert cli.describe('model_final_6f60dc.pkl', weights).splitlines() == shown[:2]
