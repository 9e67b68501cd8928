"""Checkpoint key mapping: mmdet 3.x ``Mask2Former`` -> m2f_mm ``M2FDetector``.

Pure functions over state dicts (name -> tensor); no model is built here. The detectron2
(facebookresearch/Mask2Former ``.pkl``) mapping lives in ``m2f_mm/checkpoints_d2.py`` and reuses
:func:`apply_rules`.

Our layout (prefix ``panoptic_head.``), with the mmdet source name on the right:

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

Everything outside ``panoptic_head.`` (backbone, neck, data_preprocessor) passes through unchanged.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Sequence, Tuple

Rule = Tuple[str, str]  # (regex over the full source key, replacement template)

_HEAD = r'panoptic_head\.'
_PD = _HEAD + r'pixel_decoder\.'
_ENC = _PD + r'encoder\.layers\.(\d+)\.'
_DEC = _HEAD + r'transformer_decoder\.layers\.(\d+)\.'
_P = r'(weight|bias)$'

MMDET_RULES: List[Rule] = [
    # pixel decoder
    (_PD + r'input_convs\.(\d+)\.(conv|gn)\.' + _P, r'panoptic_head.pixel_decoder.input_projs.\1.\2.\3'),
    (_PD + r'level_encoding\.weight$', r'panoptic_head.pixel_decoder.level_embed.weight'),
    (_ENC + r'self_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\.' + _P,
     r'panoptic_head.pixel_decoder.encoder.layers.\1.self_attn.\2.\3'),
    (_ENC + r'norms\.0\.' + _P, r'panoptic_head.pixel_decoder.encoder.layers.\1.norm1.\2'),
    (_ENC + r'norms\.1\.' + _P, r'panoptic_head.pixel_decoder.encoder.layers.\1.norm2.\2'),
    (_ENC + r'ffn\.layers\.0\.0\.' + _P, r'panoptic_head.pixel_decoder.encoder.layers.\1.linear1.\2'),
    (_ENC + r'ffn\.layers\.1\.' + _P, r'panoptic_head.pixel_decoder.encoder.layers.\1.linear2.\2'),
    (_PD + r'(lateral_convs|output_convs)\.(\d+)\.(conv|gn)\.' + _P, r'panoptic_head.pixel_decoder.\1.\2.\3.\4'),
    (_PD + r'mask_feature\.' + _P, r'panoptic_head.pixel_decoder.mask_features.\1'),
    # transformer decoder
    (_DEC + r'(cross_attn|self_attn)\.attn\.(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)$',
     r'panoptic_head.transformer_decoder.layers.\1.\2.\3'),
    (_DEC + r'norms\.0\.' + _P, r'panoptic_head.transformer_decoder.layers.\1.norm1.\2'),
    (_DEC + r'norms\.1\.' + _P, r'panoptic_head.transformer_decoder.layers.\1.norm2.\2'),
    (_DEC + r'norms\.2\.' + _P, r'panoptic_head.transformer_decoder.layers.\1.norm3.\2'),
    (_DEC + r'ffn\.layers\.0\.0\.' + _P, r'panoptic_head.transformer_decoder.layers.\1.linear1.\2'),
    (_DEC + r'ffn\.layers\.1\.' + _P, r'panoptic_head.transformer_decoder.layers.\1.linear2.\2'),
    (_HEAD + r'transformer_decoder\.post_norm\.' + _P, r'panoptic_head.transformer_decoder.decoder_norm.\1'),
    # queries, embeddings, prediction heads
    (_HEAD + r'decoder_input_projs\.(\d+)\.' + _P, r'panoptic_head.input_projs.\1.\2'),
    (_HEAD + r'(query_feat|query_embed|level_embed)\.weight$', r'panoptic_head.\1.weight'),
    (_HEAD + r'cls_embed\.' + _P, r'panoptic_head.class_embed.\1'),
    (_HEAD + r'mask_embed\.0\.' + _P, r'panoptic_head.mask_embed.layers.0.\1'),
    (_HEAD + r'mask_embed\.2\.' + _P, r'panoptic_head.mask_embed.layers.1.\1'),
    (_HEAD + r'mask_embed\.4\.' + _P, r'panoptic_head.mask_embed.layers.2.\1'),
]

# Source keys under these prefixes must match a rule; everything else passes through.
MMDET_MAPPED_PREFIXES = ('panoptic_head.', 'panoptic_fusion_head.')


def apply_rules(state_dict: Mapping[str, object], rules: Sequence[Rule],
                mapped_prefixes: Sequence[str]) -> Tuple['OrderedDict[str, object]', List[str]]:
    """Rename keys by the first matching rule.

    Args:
        state_dict: source name -> tensor.
        rules: ordered (regex, replacement); the regex must match the whole key from its start.
        mapped_prefixes: keys starting with one of these must be matched by a rule, others are
            copied unchanged (backbone, neck ...).

    Returns:
        (new_state_dict, unmapped_keys): unmapped keys are left out of new_state_dict.
    """
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    new_state: 'OrderedDict[str, object]' = OrderedDict()
    unmapped: List[str] = []
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            if pattern.match(key):
                new_key = pattern.sub(repl, key, count=1)
                break
        else:
            if key.startswith(tuple(mapped_prefixes)):
                unmapped.append(key)
                continue
            new_key = key
        if new_key in new_state:
            raise ValueError(f'two source keys map to {new_key!r}')
        new_state[new_key] = value
    return new_state, unmapped


def convert_mmdet_to_m2f(state_dict: Mapping[str, object]) -> Tuple['OrderedDict[str, object]', List[str]]:
    """mmdet 3.x Mask2Former state_dict -> (M2FDetector state_dict, unmapped source keys).

    Accepts a bare state_dict or an mmengine checkpoint dict (``{'state_dict': ..., 'meta': ...}``).
    """
    if 'state_dict' in state_dict and isinstance(state_dict['state_dict'], Mapping):
        state_dict = state_dict['state_dict']
    return apply_rules(state_dict, MMDET_RULES, MMDET_MAPPED_PREFIXES)


def detect_layout(state_dict: Mapping[str, object]) -> str:
    """'mmdet' (mmdet Mask2Former keys), 'm2f_mm' (ours) or 'unknown', from marker keys.

    Lets tools accept either layout (e.g. convert ``load_from`` on the fly) without a flag.
    """
    if 'state_dict' in state_dict and isinstance(state_dict['state_dict'], Mapping):
        state_dict = state_dict['state_dict']
    keys = list(state_dict)
    if any(k.startswith('panoptic_head.cls_embed.') or '.pixel_decoder.level_encoding.' in k for k in keys):
        return 'mmdet'
    if any(k.startswith('panoptic_head.class_embed.') or '.transformer_decoder.decoder_norm.' in k for k in keys):
        return 'm2f_mm'
    return 'unknown'


def load_checkpoint_file(path: str, trust_pickle: bool = False) -> dict:
    """A checkpoint on CPU through the restricted unpickler (tensors, numpy, mmengine's log buffers:
    genuine mmengine checkpoints load, no code runs); ``trust_pickle`` loads anything (only for
    files you made or know)."""
    import torch
    if trust_pickle:
        return torch.load(path, map_location='cpu', weights_only=False)
    from m2f_mm.utils.checkpoint_compat import load_local_checkpoint
    return load_local_checkpoint(path, map_location='cpu')


def state_dict_prefixes(state_dict: Mapping[str, object], depth: int = 3) -> Dict[str, int]:
    """Count keys per dotted prefix of ``depth`` parts, with layer indices collapsed to ``*``."""
    counts: Dict[str, int] = {}
    for key in state_dict:
        prefix = '.'.join(re.sub(r'^\d+$', '*', part) for part in key.split('.')[:depth])
        counts[prefix] = counts.get(prefix, 0) + 1
    return counts
