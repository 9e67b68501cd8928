"""Class order of converted weights: the dataset's file order -> things first.

The original Mask2Former numbers the classes of a panoptic model in the dataset's own order
(ADE20K: the 150 semantic classes, things and stuff interleaved; Cityscapes: train ids, stuff
first). m2f_mm follows mmdet's panoptic convention: label k < num_things is a thing. The weights
that carry the class order are the rows of the classification layer, ``class_embed`` [C + 1, D]
and its bias [C + 1]; the last row is "no object" and stays last.

Shapes: C classes, D query width.
"""
import json
from typing import Dict, List, Mapping, Sequence

from torch import Tensor


def things_first_order(categories: Sequence[Mapping]) -> List[int]:
    """Positions (file order) of the thing categories, then of the stuff ones.

    Entry k of the result is the file-order class index that becomes label k, the same order
    ``M2FCocoPanopticDataset`` gives its labels (``isthing`` absent means a thing, as in
    instance files).
    """
    things = [i for i, cat in enumerate(categories) if cat.get('isthing', 1)]
    stuff = [i for i, cat in enumerate(categories) if not cat.get('isthing', 1)]
    return things + stuff


def categories_of(ann_file: str) -> List[dict]:
    """The ``categories`` of a COCO(-panoptic) annotation file, in file order."""
    with open(ann_file) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get('categories'), list):
        raise ValueError(f'{ann_file} has no "categories" list; give the COCO panoptic annotation file of '
                         'the dataset the checkpoint was trained on (for example ade20k_panoptic_val.json)')
    return data['categories']


def reorder_class_rows(state: Mapping[str, Tensor], order: Sequence[int], *,
                       prefix: str = 'panoptic_head.') -> Dict[str, Tensor]:
    """A copy of ``state`` whose classification rows follow ``order``.

    Args:
        state: m2f_mm state dict holding ``{prefix}class_embed.weight`` [C + 1, D] and
            ``{prefix}class_embed.bias`` [C + 1].
        order: a permutation of range(C); new row k = old row ``order[k]``, row C (no object) kept.
        prefix: where the head lives (``panoptic_head.`` or ``decode_head.``).

    Raises:
        KeyError: no classification layer under ``prefix``.
        ValueError: ``order`` is not a permutation of the checkpoint's C classes.
    """
    weight_key = prefix + 'class_embed.weight'
    if weight_key not in state:
        raise KeyError(f'{weight_key} is not in the checkpoint; is the head under another prefix?')
    num_classes = state[weight_key].shape[0] - 1
    if sorted(order) != list(range(num_classes)):
        raise ValueError(f'the annotation file has {len(order)} categories but the checkpoint has {num_classes} '
                         'classes (+1 no-object row); give the annotation file of the dataset it was trained on')
    rows = list(order) + [num_classes]
    out = dict(state)
    for key in (weight_key, prefix + 'class_embed.bias'):
        if key in out:
            out[key] = out[key][rows].clone()
    return out
