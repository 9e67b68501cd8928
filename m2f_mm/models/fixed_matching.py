"""Fixed matching of queries to ground-truth segments: query ``c`` always predicts class ``c``.

Shape legend: Q queries, G ground-truth segments of the image, P sampled points,
C classes (index C = no-object), M = G matched pairs.

MaskFormer's ablation of bipartite matching (semantic segmentation): the GT segment of class
``c`` is assigned to query ``c``; queries whose class is absent from the image (and queries
``>= C``) are no-object. It is defined only for semantic targets (one segment per class present)
and needs ``Q >= C``.

:class:`M2FFixedMatcher` has the interface :class:`~m2f_mm.models.criterion.M2FCriterion` uses
for its assigner (``cost_terms`` on the device, then ``match_terms`` on the host copy), so it drops
into the criterion unchanged. Its class term is the fixed assignment written as a cost: 0 at
``(gt_labels[g], g)``, 1 elsewhere, so the minimum-cost assignment of the terms *is* the fixed
one, and ``match_terms`` reads it back directly, without a solver.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..errors import M2FConfigError
from ..registry import register_task_util
from .matching import _where

__all__ = ['fixed_match', 'fixed_match_cost', 'M2FFixedMatcher']


def fixed_match(gt_labels: Tensor, num_queries: int) -> Tuple[Tensor, Tensor]:
    """Assign the GT segment of class ``c`` to query ``c``.

    Args:
        gt_labels: ``LongTensor[G]`` class of each GT segment, each class at most once.
        num_queries: Q, which must exceed every label.

    Returns:
        ``(query_idx, gt_idx)``: ``LongTensor[G]`` each on ``gt_labels.device``, sorted by query
        (as :func:`~m2f_mm.models.matching.hungarian_match`), ``query_idx == gt_labels[gt_idx]``.
    """
    if gt_labels.dim() != 1:
        raise ValueError(f'gt_labels must be [G], got {tuple(gt_labels.shape)}')
    labels = gt_labels.long()
    if labels.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=labels.device)
        return empty, empty.clone()
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ValueError(f'fixed matching got gt label {low}: labels must be class ids >= 0')
    if high >= num_queries:
        raise M2FConfigError(
            f'fixed matching got gt label {high} but only num_queries={num_queries} '
            f'(query c predicts class c): set num_queries >= num_classes')
    query_idx, gt_idx = torch.sort(labels, stable=True)
    repeated = query_idx[1:][query_idx[1:] == query_idx[:-1]]
    if repeated.numel():
        label = int(repeated[0])
        count = int((labels == label).sum())
        raise M2FConfigError(
            f'fixed matching got {count} ground-truth segments of class {label} in one image; it is '
            f'defined for semantic targets (one segment per class): use M2FHungarianMatcher')
    return query_idx, gt_idx


def fixed_match_cost(num_queries: int, gt_labels: Tensor) -> Tensor:
    """The fixed assignment as a cost: 0 at ``(gt_labels[g], g)``, 1 elsewhere.

    Args:
        num_queries: Q; gt_labels: ``LongTensor[G]``.

    Returns:
        ``Tensor[Q, G]`` fp32 on ``gt_labels.device``; its minimum-cost assignment is
        :func:`fixed_match` when every label is below Q and no label repeats.
    """
    queries = torch.arange(num_queries, device=gt_labels.device)
    return (queries[:, None] != gt_labels.long()[None, :]).float()


def _check_enough_queries(cls_logits: Tensor) -> None:
    num_queries, num_classes = cls_logits.shape[0], cls_logits.shape[-1] - 1
    if num_queries < num_classes:
        raise M2FConfigError(
            f'fixed matching needs num_queries >= num_classes (query c predicts class c), got '
            f'num_queries={num_queries} and num_classes={num_classes}: set num_queries={num_classes}')


@register_task_util
class M2FFixedMatcher:
    """MaskFormer's fixed-matching ablation: query ``c`` <-> the GT segment of class ``c``.

    Predictions are not looked at (no weights); the class logits only give Q and C for the
    ``num_queries >= num_classes`` check.
    """

    def cost_terms(self, cls_logits: Tensor, mask_point_logits: Tensor, gt_labels: Tensor,
                   gt_point_masks: Tensor) -> Tensor:
        """``Tensor[1, Q, G]`` fp32 on the input device: the one term :func:`fixed_match_cost`.

        Args:
            cls_logits: ``Tensor[Q, C+1]``; mask_point_logits: ``Tensor[Q, P]`` (unused);
            gt_labels: ``LongTensor[G]``; gt_point_masks: ``Tensor[G, P]`` (unused).
        """
        _check_enough_queries(cls_logits)
        return fixed_match_cost(cls_logits.shape[0], gt_labels.to(cls_logits.device))[None]

    def match_terms(self, terms: Tensor, *, set_index: Optional[int] = None,
                    image_index: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """The assignment encoded by :meth:`cost_terms`' ``terms: Tensor[1, Q, G]`` (any device).

        Returns ``(query_idx, gt_idx)`` on ``terms.device``, sorted by query.
        """
        if terms.dim() != 3 or terms.shape[0] != 1:
            raise ValueError(f'terms must be [1, Q, G] (M2FFixedMatcher.cost_terms), got '
                             f'{tuple(terms.shape)}')
        num_queries, num_gts = terms.shape[1], terms.shape[2]
        if num_gts == 0 or num_queries == 0:
            empty = torch.zeros(0, dtype=torch.long, device=terms.device)
            return empty, empty.clone()
        hits = terms[0] == 0  # [Q, G]
        if not bool((hits.sum(0) == 1).all()):
            raise ValueError(
                f'M2FFixedMatcher.match_terms got terms with no single zero-cost query per GT '
                f'segment ({_where(set_index, image_index)}): pass the output of its own cost_terms')
        try:
            return fixed_match(hits.float().argmax(0), num_queries)
        except ValueError as error:
            raise type(error)(f'{error} ({_where(set_index, image_index)})') from None

    def assign(self, cls_logits: Tensor, mask_point_logits: Tensor, gt_labels: Tensor,
               gt_point_masks: Tensor, *, set_index: Optional[int] = None,
               image_index: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Match one image's queries to its GT segments (same arguments as
        :meth:`~m2f_mm.models.matching.M2FHungarianMatcher.assign`).

        Returns:
            ``(query_idx, gt_idx)``: ``LongTensor[G]`` on ``cls_logits.device``, sorted by query.
        """
        _check_enough_queries(cls_logits)
        try:
            return fixed_match(gt_labels.to(cls_logits.device), cls_logits.shape[0])
        except ValueError as error:
            raise type(error)(f'{error} ({_where(set_index, image_index)})') from None

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
