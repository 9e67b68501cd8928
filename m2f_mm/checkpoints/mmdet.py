"""mmdet 3.x / mmseg 1.x Mask2Former and MaskFormer checkpoints -> m2f_mm's key layout (pure functions).

Our name (relative to ``panoptic_head.`` for mmdet, ``decode_head.`` for mmseg) on the left, the
OpenMMLab name on the right:

    pixel_decoder.input_projs.{l}.conv/gn          <- pixel_decoder.input_convs.{l}.conv/gn
    pixel_decoder.level_embed                       <- pixel_decoder.level_encoding
    pixel_decoder.encoder.layers.{i}.self_attn.*    <- (same)
    pixel_decoder.encoder.layers.{i}.norm1/norm2    <- ...norms.0 / norms.1
    pixel_decoder.encoder.layers.{i}.linear1/2      <- ...ffn.layers.0.0 / ffn.layers.1
    pixel_decoder.lateral_convs / output_convs      <- (same)
    pixel_decoder.mask_features                     <- pixel_decoder.mask_feature
    transformer_decoder.layers.{i}.cross_attn.*     <- ...cross_attn.attn.*   (nn.MultiheadAttention layout)
    transformer_decoder.layers.{i}.self_attn.*      <- ...self_attn.attn.*
    transformer_decoder.layers.{i}.norm1/2/3        <- ...norms.0/1/2 (after cross / self / FFN)
    transformer_decoder.layers.{i}.linear1/2        <- ...ffn.layers.0.0 / ffn.layers.1
    transformer_decoder.decoder_norm                <- transformer_decoder.post_norm
    input_projs.{l}                                 <- decoder_input_projs.{l}
    query_feat / query_embed / level_embed          <- (same)
    class_embed                                     <- cls_embed
    mask_embed.layers.{0,1,2}                       <- mask_embed.{0,2,4}

MaskFormer (mmdet's / mmseg's ``MaskFormerHead``), additionally:

    pixel_decoder.encoder.layers.{i}.self_attn.*    <- ...self_attn.attn.*   (DETR encoder)
    pixel_decoder.last_feat_conv / encoder_in_proj / encoder_out_proj   <- (same)
    transformer_decoder.layers.{i}.norm1/2/3        <- ...norms.0/1/2 (after self / cross / FFN)
    input_proj                                      <- decoder_input_proj

Everything outside the head (backbone, neck, data_preprocessor) passes through unchanged.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

from .rename import (FUSION_HEAD_PREFIX, WEIGHT_HEAD_PREFIXES, Table, compile_table, head_prefix_of, prefixed,
                     rename_state)

_ENC = 'pixel_decoder.encoder.layers.{i}.'
_DEC = 'transformer_decoder.layers.{i}.'

# (OpenMMLab template, our template), both relative to the head prefix.
MMDET_TABLE: Table = [
    ('pixel_decoder.input_convs.{i}.{conv_or_gn}.{param}', 'pixel_decoder.input_projs.{i}.{conv_or_gn}.{param}'),
    ('pixel_decoder.level_encoding.weight', 'pixel_decoder.level_embed.weight'),
    (_ENC + 'self_attn.{msda}.{param}', _ENC + 'self_attn.{msda}.{param}'),
    (_ENC + 'self_attn.attn.{mha}', _ENC + 'self_attn.{mha}'),
    (_ENC + 'norms.0.{param}', _ENC + 'norm1.{param}'),
    (_ENC + 'norms.1.{param}', _ENC + 'norm2.{param}'),
    (_ENC + 'ffn.layers.0.0.{param}', _ENC + 'linear1.{param}'),
    (_ENC + 'ffn.layers.1.{param}', _ENC + 'linear2.{param}'),
    ('pixel_decoder.{fpn}.{i}.{conv_or_gn}.{param}', 'pixel_decoder.{fpn}.{i}.{conv_or_gn}.{param}'),
    ('pixel_decoder.mask_feature.{param}', 'pixel_decoder.mask_features.{param}'),
    ('pixel_decoder.last_feat_conv.{conv_or_gn}.{param}', 'pixel_decoder.last_feat_conv.{conv_or_gn}.{param}'),
    ('pixel_decoder.encoder_in_proj.{param}', 'pixel_decoder.encoder_in_proj.{param}'),
    ('pixel_decoder.encoder_out_proj.{conv_or_gn}.{param}', 'pixel_decoder.encoder_out_proj.{conv_or_gn}.{param}'),
    (_DEC + '{attn}.attn.{mha}', _DEC + '{attn}.{mha}'),
    (_DEC + 'norms.0.{param}', _DEC + 'norm1.{param}'),
    (_DEC + 'norms.1.{param}', _DEC + 'norm2.{param}'),
    (_DEC + 'norms.2.{param}', _DEC + 'norm3.{param}'),
    (_DEC + 'ffn.layers.0.0.{param}', _DEC + 'linear1.{param}'),
    (_DEC + 'ffn.layers.1.{param}', _DEC + 'linear2.{param}'),
    ('transformer_decoder.post_norm.{param}', 'transformer_decoder.decoder_norm.{param}'),
    ('decoder_input_projs.{i}.{param}', 'input_projs.{i}.{param}'),
    ('decoder_input_proj.{param}', 'input_proj.{param}'),
    ('{embedding}.weight', '{embedding}.weight'),
    ('cls_embed.{param}', 'class_embed.{param}'),
    ('mask_embed.0.{param}', 'mask_embed.layers.0.{param}'),
    ('mask_embed.2.{param}', 'mask_embed.layers.1.{param}'),
    ('mask_embed.4.{param}', 'mask_embed.layers.2.{param}'),
]


def _unwrap(state_dict: Mapping[str, object]) -> Mapping[str, object]:
    if 'state_dict' in state_dict and isinstance(state_dict['state_dict'], Mapping):
        return state_dict['state_dict']
    return state_dict


def convert_mmdet_to_m2f(state_dict: Mapping[str, object],
                         head_prefix: Optional[str] = None) -> Tuple['OrderedDict[str, object]', List[str]]:
    """mmdet 3.x (``panoptic_head.``) or mmseg 1.x (``decode_head.``) Mask2Former state dict ->
    (m2f_mm state dict, unmapped head keys). Accepts a bare state dict or an mmengine checkpoint."""
    state_dict = _unwrap(state_dict)
    prefix = head_prefix or head_prefix_of(state_dict)
    rules = compile_table(prefixed(MMDET_TABLE, prefix, prefix))
    return rename_state(state_dict, rules, (prefix, FUSION_HEAD_PREFIX))


def detect_layout(state_dict: Mapping[str, object]) -> str:
    """'mmdet' (OpenMMLab Mask2Former keys), 'm2f_mm' (ours) or 'unknown', from marker keys."""
    keys = list(_unwrap(state_dict))
    if any(k.startswith(tuple(p + 'cls_embed.' for p in WEIGHT_HEAD_PREFIXES))
           or '.pixel_decoder.level_encoding.' in k for k in keys):
        return 'mmdet'
    if any(k.startswith(tuple(p + 'class_embed.' for p in WEIGHT_HEAD_PREFIXES))
           or '.transformer_decoder.decoder_norm.' in k for k in keys):
        return 'm2f_mm'
    return 'unknown'


def state_dict_prefixes(state_dict: Mapping[str, object], depth: int = 3) -> Dict[str, int]:
    """Count keys per dotted prefix of ``depth`` parts, with layer indices collapsed to ``*``."""
    counts: Dict[str, int] = {}
    for key in state_dict:
        prefix = '.'.join(re.sub(r'^\d+$', '*', part) for part in key.split('.')[:depth])
        counts[prefix] = counts.get(prefix, 0) + 1
    return counts
