"""The one key-rename engine of m2f_mm's checkpoint converters (mmdet and detectron2 layouts).

A table is a list of ``(source template, target template)`` pairs. A template is a key with
``{slot}`` placeholders; each slot matches the regex in :data:`SLOTS` and is copied to the same slot
of the other side. The first matching pair wins. One table serves both directions
(``reverse=True``), which is how round trips are tested.
"""
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

SLOTS = {
    'i': r'\d+', 'j': r'\d+', 'c': r'\d+',
    'param': r'weight|bias',
    'conv_or_gn': r'conv|gn',
    'bn': r'weight|bias|running_mean|running_var|num_batches_tracked',
    'msda': r'sampling_offsets|attention_weights|value_proj|output_proj',
    'encmod': r'linear1|linear2|norm1|norm2',
    'lin': r'linear1|linear2',
    'decmod': r'linear1|linear2|norm1|norm2|norm3',
    'attn': r'cross_attn|self_attn',
    'fpn': r'lateral_convs|output_convs',
    'mha': r'in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias',
    'embedding': r'query_feat|query_embed|level_embed',
}

Table = List[Tuple[str, str]]
Rules = List[Tuple['re.Pattern', str]]

# The head modules of an m2f_mm model as state-dict key prefixes (mmdet: panoptic_head and
# panoptic_fusion_head; mmseg: decode_head). A checkpoint key under one of them that the model lacks
# means the checkpoint was made for another head layout (a converter is needed), not that it carries
# an extra branch.
HEAD_PREFIXES = ('panoptic_head.', 'decode_head.', 'panoptic_fusion_head.')
FUSION_HEAD_PREFIX = 'panoptic_fusion_head.'
# The fusion head holds no weights: the converters rename the heads that do, and tell an mmdet from an
# mmseg state dict by which of these it uses (in this order).
WEIGHT_HEAD_PREFIXES = tuple(p for p in HEAD_PREFIXES if p != FUSION_HEAD_PREFIX)


def head_prefix_of(keys: Iterable[str]) -> str:
    """The first of :data:`WEIGHT_HEAD_PREFIXES` some key starts with ('panoptic_head.' when none does)."""
    keys = list(keys)
    for prefix in WEIGHT_HEAD_PREFIXES:
        if any(k.startswith(prefix) for k in keys):
            return prefix
    return WEIGHT_HEAD_PREFIXES[0]


def _template_regex(template: str) -> 're.Pattern':
    parts = re.split(r'\{(\w+)\}', template)
    regex = ''.join(re.escape(p) if n % 2 == 0 else f'(?P<{p}>{SLOTS[p]})' for n, p in enumerate(parts))
    return re.compile(regex + r'\Z')


def _template_repl(template: str) -> str:
    return re.sub(r'\{(\w+)\}', r'\\g<\1>', template)


def compile_table(table: Iterable[Tuple[str, str]], reverse: bool = False) -> Rules:
    """Source-matching regexes and target replacements of ``table`` (target -> source with ``reverse``)."""
    return [(_template_regex(b if reverse else a), _template_repl(a if reverse else b)) for a, b in table]


def prefixed(table: Iterable[Tuple[str, str]], source_prefix: str, target_prefix: str) -> Table:
    """``table`` with a prefix put in front of every source and target template."""
    return [(source_prefix + a, target_prefix + b) for a, b in table]


def rename_keys(keys: Iterable[str], rules: Sequence[Tuple['re.Pattern', str]]) -> Tuple[Dict[str, str], List[str]]:
    """``({source key: new key}, unmatched source keys)``; the first matching rule wins."""
    renamed, unmatched = {}, []
    for key in keys:
        for pattern, repl in rules:
            if pattern.match(key):
                renamed[key] = pattern.sub(repl, key, count=1)
                break
        else:
            unmatched.append(key)
    return renamed, unmatched


def rename_state(state: Mapping[str, object], rules: Rules,
                 mapped_prefixes: Sequence[str]) -> Tuple['OrderedDict[str, object]', List[str]]:
    """Rename a state dict: keys under ``mapped_prefixes`` must match a rule (else they are left out
    and reported), other keys (backbone, neck, ...) are copied unchanged.

    Raises:
        ValueError: two source keys map to the same new key.
    """
    renamed, _ = rename_keys(list(state), rules)
    new_state: 'OrderedDict[str, object]' = OrderedDict()
    unmapped: List[str] = []
    for key, value in state.items():
        if key in renamed:
            new_key = renamed[key]
        elif key.startswith(tuple(mapped_prefixes)):
            unmapped.append(key)
            continue
        else:
            new_key = key
        if new_key in new_state:
            raise ValueError(f'two source keys map to {new_key!r}')
        new_state[new_key] = value
    return new_state, unmapped
