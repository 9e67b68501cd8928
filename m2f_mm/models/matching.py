"""Hungarian matching of predicted masks to ground-truth segments (one image at a time).

Shape legend: Q queries, G ground-truth segments of the image, P sampled points,
C classes (index C = no-object), M = min(Q, G) matched pairs.

Costs are pairwise ``[Q, G]``, computed in fp32 without gradient, with autocast disabled (a
bf16/fp16 autocast region would otherwise run the einsums in low precision):

    cost = w_cls * (-softmax(cls)[:, gt]) + w_mask * mean-over-points BCE + w_dice * dice(+1)

The optimal assignment comes from :func:`scipy.optimize.linear_sum_assignment`. Non-finite
costs raise a ``ValueError`` that names the prediction set, the image and the offending term,
instead of scipy's opaque "cost matrix is infeasible".
"""
import logging
import warnings
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ..errors import M2FConfigError
from ..registry import register_task_util

__all__ = [
    'class_cost', 'sigmoid_bce_cost', 'sigmoid_focal_cost', 'dice_cost', 'hungarian_match',
    'check_finite_costs', 'M2FHungarianMatcher'
]

COST_TERMS = ('class', 'mask', 'dice')


def _fp32(*tensors: Tensor) -> List[Tensor]:
    return [t.detach().float() for t in tensors]


def _no_autocast(device: torch.device):
    return torch.autocast(device_type=device.type, enabled=False)


def class_cost(cls_logits: Tensor, gt_labels: Tensor) -> Tensor:
    """``-softmax(cls_logits)[q, gt_labels[g]]``.

    Args:
        cls_logits: ``Tensor[Q, C+1]``; gt_labels: ``LongTensor[G]``.

    Returns:
        ``Tensor[Q, G]`` fp32 in ``[-1, 0]``.
    """
    with torch.no_grad(), _no_autocast(cls_logits.device):
        (logits, ) = _fp32(cls_logits)
        return -logits.softmax(-1)[:, gt_labels.long()]


def sigmoid_bce_cost(mask_point_logits: Tensor, gt_point_masks: Tensor) -> Tensor:
    """Mean over points of ``BCE(sigmoid(logit_q), target_g)`` for every pair.

    ``BCE = t * softplus(-x) + (1 - t) * softplus(x)`` and ``softplus(x) = softplus(-x) + x``, so
    the sum over points is ``sum_p softplus(-x) + sum_p (1 - t) x``: one softplus over ``[Q, P]``
    and one matmul per pair set (instead of two of each).

    Args:
        mask_point_logits: ``Tensor[Q, P]``; gt_point_masks: ``Tensor[G, P]`` in ``[0, 1]``.

    Returns:
        ``Tensor[Q, G]`` fp32.
    """
    with torch.no_grad(), _no_autocast(mask_point_logits.device):
        logits, targets = _fp32(mask_point_logits, gt_point_masks)
        pos = F.softplus(-logits)  # BCE(x, 1)
        cost = pos.sum(-1, keepdim=True) + logits @ (1 - targets).T
        return cost / logits.shape[1]


def sigmoid_focal_cost(mask_point_logits: Tensor, gt_point_masks: Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> Tensor:
    """Mean over points of the sigmoid focal loss of every pair (MaskFormer's mask cost).

    ``focal(x, 1) = alpha (1 - p)^gamma BCE(x, 1)``, ``focal(x, 0) = (1 - alpha) p^gamma BCE(x, 0)``, so
    the cost is ``focal(x, 1) @ t.T + focal(x, 0) @ (1 - t).T`` over points; BCE comes from softplus,
    stable for any logit (mmdet's cost takes ``log(p + 1e-12)``, equal up to that clamp).

    Args:
        mask_point_logits: ``Tensor[Q, P]``; gt_point_masks: ``Tensor[G, P]`` in ``[0, 1]``.
        alpha, gamma: the focal loss's (0.25, 2).

    Returns:
        ``Tensor[Q, G]`` fp32.
    """
    with torch.no_grad(), _no_autocast(mask_point_logits.device):
        logits, targets = _fp32(mask_point_logits, gt_point_masks)
        probs = logits.sigmoid()
        pos = alpha * (1 - probs).pow(gamma) * F.softplus(-logits)
        neg = (1 - alpha) * probs.pow(gamma) * F.softplus(logits)
        return (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[1]


def dice_cost(mask_point_logits: Tensor, gt_point_masks: Tensor,
              smooth: float = 1.0) -> Tensor:
    """``1 - (2 * sum(p t) + smooth) / (sum p + sum t + smooth)`` with ``p = sigmoid(logit)``.

    Args:
        mask_point_logits: ``Tensor[Q, P]``; gt_point_masks: ``Tensor[G, P]``.

    Returns:
        ``Tensor[Q, G]`` fp32 in ``[0, 1)``.
    """
    with torch.no_grad(), _no_autocast(mask_point_logits.device):
        logits, targets = _fp32(mask_point_logits, gt_point_masks)
        probs = logits.sigmoid()
        numerator = 2 * torch.einsum('qp,gp->qg', probs, targets)
        denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
        return 1 - (numerator + smooth) / (denominator + smooth)


def _where(set_index: Optional[int], image_index: Optional[int]) -> str:
    parts = []
    if set_index is not None:
        parts.append(f'prediction set {set_index}')
    if image_index is not None:
        parts.append(f'image {image_index}')
    return ', '.join(parts) if parts else 'the given predictions'


def check_finite_costs(terms: Tensor,
                       set_index: Optional[int] = None,
                       image_index: Optional[int] = None) -> None:
    """Raise ``ValueError`` naming the non-finite terms of ``terms: Tensor[3, Q, G]``.

    The terms are (class, mask, dice), in :data:`COST_TERMS` order.
    """
    finite = torch.isfinite(terms).flatten(1).all(1).tolist()
    bad = [name for name, ok in zip(COST_TERMS, finite) if not ok]
    if bad:
        raise ValueError(
            f'Hungarian matching got a non-finite {"/".join(bad)} cost for '
            f'{_where(set_index, image_index)} (NaN/inf in the predicted class or mask '
            f'logits, e.g. after a diverged update or an AMP overflow)')


def hungarian_match(cost: Tensor) -> Tuple[Tensor, Tensor]:
    """Minimum-cost one-to-one assignment.

    Args:
        cost: ``Tensor[Q, G]`` finite, any device.

    Returns:
        ``(query_idx, gt_idx)``: ``LongTensor[M]`` each on ``cost.device``, ``M = min(Q, G)``,
        sorted by query index.
    """
    if cost.dim() != 2:
        raise ValueError(f'cost must be [Q, G], got {tuple(cost.shape)}')
    device = cost.device
    if cost.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty.clone()
    cost_cpu = cost.detach().float().cpu()
    if not bool(torch.isfinite(cost_cpu).all()):
        raise ValueError('Hungarian matching got a non-finite cost matrix')
    rows, cols = linear_sum_assignment(cost_cpu.numpy())
    return (torch.as_tensor(rows, dtype=torch.long, device=device),
            torch.as_tensor(cols, dtype=torch.long, device=device))


@register_task_util
class M2FHungarianMatcher:
    """Mask2Former's per-image bipartite matching of queries to GT segments.

    Args:
        cls_weight: weight of the class cost (-softmax probability of the GT class).
        mask_weight: weight of the sigmoid BCE cost (mean over points).
        dice_weight: weight of the dice cost (smoothing ``dice_smooth``).
        mask_cost: ``'bce'`` (Mask2Former) or ``'focal'`` (MaskFormer: sigmoid focal loss with
            ``focal_alpha`` / ``focal_gamma``, mean over points).
    """

    def __init__(self, cls_weight: float = 2.0, mask_weight: float = 5.0,
                 dice_weight: float = 5.0, dice_smooth: float = 1.0, mask_cost: str = 'bce',
                 focal_alpha: float = 0.25, focal_gamma: float = 2.0) -> None:
        self.cls_weight = float(cls_weight)
        self.mask_weight = float(mask_weight)
        self.dice_weight = float(dice_weight)
        self.dice_smooth = float(dice_smooth)
        if mask_cost not in ('bce', 'focal'):
            raise M2FConfigError(f"assigner mask_cost={mask_cost!r}: use 'bce' (Mask2Former) or 'focal' (MaskFormer)")
        self.mask_cost = mask_cost
        self.focal_alpha, self.focal_gamma = float(focal_alpha), float(focal_gamma)
        self._warned_more_gts = False

    def cost_terms(self, cls_logits: Tensor, mask_point_logits: Tensor, gt_labels: Tensor,
                   gt_point_masks: Tensor) -> Tensor:
        """Weighted (class, mask, dice) costs, ``Tensor[3, Q, G]`` fp32 on the input device."""
        return torch.stack([
            class_cost(cls_logits, gt_labels) * self.cls_weight,
            self._mask_cost(mask_point_logits, gt_point_masks) * self.mask_weight,
            dice_cost(mask_point_logits, gt_point_masks, self.dice_smooth) * self.dice_weight,
        ])

    def _mask_cost(self, mask_point_logits: Tensor, gt_point_masks: Tensor) -> Tensor:
        if self.mask_cost == 'focal':
            return sigmoid_focal_cost(mask_point_logits, gt_point_masks, self.focal_alpha, self.focal_gamma)
        return sigmoid_bce_cost(mask_point_logits, gt_point_masks)

    def match_terms(self, terms: Tensor, *, set_index: Optional[int] = None,
                    image_index: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Hungarian assignment from precomputed ``terms: Tensor[3, Q, G]`` (any device).

        Returns ``(query_idx, gt_idx)`` on ``terms.device``.
        """
        num_queries, num_gts = terms.shape[1], terms.shape[2]
        if num_gts > num_queries and not self._warned_more_gts:
            self._warned_more_gts = True
            msg = (f'{num_gts} ground-truth segments but only {num_queries} queries '
                   f'({_where(set_index, image_index)}): only {num_queries} are matched; '
                   f'raise num_queries. This warning is shown once.')
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            print_log(msg, logger='current', level=logging.WARNING)
        if num_gts == 0 or num_queries == 0:
            empty = torch.zeros(0, dtype=torch.long, device=terms.device)
            return empty, empty.clone()
        terms_cpu = terms.detach().float().cpu()
        check_finite_costs(terms_cpu, set_index, image_index)
        query_idx, gt_idx = hungarian_match(terms_cpu.sum(0))
        return query_idx.to(terms.device), gt_idx.to(terms.device)

    def assign(self, cls_logits: Tensor, mask_point_logits: Tensor, gt_labels: Tensor,
               gt_point_masks: Tensor, *, set_index: Optional[int] = None,
               image_index: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Match one image's queries to its GT segments.

        Args:
            cls_logits: ``Tensor[Q, C+1]``.
            mask_point_logits: ``Tensor[Q, P]`` mask logits at the image's shared points.
            gt_labels: ``LongTensor[G]``.
            gt_point_masks: ``Tensor[G, P]`` GT masks at the same points.
            set_index, image_index: only used in error and warning messages.

        Returns:
            ``(query_idx, gt_idx)``: ``LongTensor[M]``, ``M = min(Q, G)``, sorted by query.
        """
        num_gts = gt_labels.shape[0]
        if num_gts == 0 or cls_logits.shape[0] == 0:
            return self.match_terms(cls_logits.new_zeros((3, cls_logits.shape[0], num_gts)),
                                    set_index=set_index, image_index=image_index)
        terms = self.cost_terms(cls_logits, mask_point_logits, gt_labels, gt_point_masks)
        return self.match_terms(terms, set_index=set_index, image_index=image_index)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(cls_weight={self.cls_weight}, '
                f'mask_weight={self.mask_weight}, dice_weight={self.dice_weight}, mask_cost={self.mask_cost!r})')

