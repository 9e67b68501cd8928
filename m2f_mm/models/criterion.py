"""Mask2Former's training losses: pure functions plus the deep-supervision criterion.

Shape legend: S prediction sets (decoder layers + 1), B images, Q queries, G_b ground-truth
segments of image b, M matched (query, GT) pairs of a batch, P points per mask, C classes
(index C = no-object), h x w mask-logit resolution, H x W GT-mask resolution.

Per prediction set (each with its own matching):

1. per image, P uniform points shared by all queries and GTs -> Hungarian matching
   (:class:`~m2f_mm.models.matching.M2FHungarianMatcher`);
2. class loss: weighted cross-entropy over all B*Q queries (no-object weight 0.1);
3. mask losses on the M matched pairs, at P importance-sampled points per pair: sigmoid BCE
   (mean over points) + dice, summed over pairs and divided by the number of GT segments of
   the batch averaged over ranks (at least 1).

Random draws follow mmdet 3.3's ``Mask2FormerHead`` exactly (per set: ``rand(1, P, 2)`` per
image, then the importance-sampling draws for all M pairs), so a seeded global generator gives
the same points and hence the same losses. All of one set's cost matrices and finiteness checks
reach the host in a single transfer.

Non-finite predictions (NaN/inf logits of image b in a set) are not matched (the assignment would be
meaningless) and make that set's three loss terms NaN, with a warning naming the set and image,
instead of raising: under DistributedDataParallel every rank must still run backward, so the
decision to stop or to skip the step is taken after it, identically on all ranks, by
:class:`~m2f_mm.engine.hooks.nonfinite.M2FNonFiniteGuardHook` (which names the iteration and images).
"""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size
from torch import Tensor, nn

from ..errors import M2FConfigError
from ..registry import TASK_UTILS, register_model
from .factored_masks import (FactoredMasks, MaskLogits, image_is_finite, image_mask_logits, image_point_logits,
                             matched_mask_logits, per_image_finite_sums)
from .matching import M2FHungarianMatcher  # noqa: F401  (registers the default assigner)
from .point_sampling import importance_sample_points, sample_at_points, uniform_points

__all__ = [
    'sigmoid_bce_loss', 'sigmoid_focal_loss', 'dice_loss', 'classification_loss', 'num_masks_across_ranks',
    'M2FCriterion'
]


def sigmoid_bce_loss(point_logits: Tensor, point_targets: Tensor, num_masks: float) -> Tensor:
    """``sum_m mean_p BCE(sigmoid(logit[m, p]), target[m, p]) / num_masks``.

    Args:
        point_logits: ``Tensor[M, P]``; point_targets: ``Tensor[M, P]`` in ``[0, 1]``.
        num_masks: normaliser (GT count averaged over ranks).

    Returns:
        fp32 scalar.
    """
    loss = F.binary_cross_entropy_with_logits(point_logits.float(), point_targets.float(),
                                              reduction='none')
    return loss.sum() / (num_masks * max(point_logits.shape[1], 1))


def sigmoid_focal_loss(point_logits: Tensor, point_targets: Tensor, num_masks: float, alpha: float = 0.25,
                       gamma: float = 2.0) -> Tensor:
    """``sum_m mean_p focal(logit[m, p], target[m, p]) / num_masks`` (MaskFormer's mask loss).

    ``focal = alpha_t (1 - p_t)^gamma BCE``, ``p_t = p t + (1 - p)(1 - t)``,
    ``alpha_t = alpha t + (1 - alpha)(1 - t)``.

    MaskFormer evaluates it on every pixel of every matched mask (P = H x W), where the textbook
    expression keeps about eight ``[M, P]`` fp32 temporaries alive for backward. This one is fused:
    the forward sums it block by block and the backward writes the closed-form gradient block by
    block, so nothing but the inputs is kept and each block stays in cache (the memory footprint of
    mmcv's CUDA ``sigmoid_focal_loss``, which mmdet's MaskFormer uses on GPU, on every device).

    Args:
        point_logits: ``Tensor[M, P]``; point_targets: ``Tensor[M, P]`` in ``[0, 1]``.
        num_masks: normaliser (GT count averaged over ranks).

    Returns:
        fp32 scalar.
    """
    if point_targets.requires_grad:  # never the case in training; keep exact autograd for it
        return _sigmoid_focal_loss_sum_unfused(point_logits, point_targets, alpha, gamma) / (
            num_masks * max(point_logits.shape[1], 1))
    total = _FusedSigmoidFocalLossSum.apply(point_logits, point_targets, float(alpha), float(gamma))
    return total / (num_masks * max(point_logits.shape[1], 1))


def _sigmoid_focal_loss_sum_unfused(logits: Tensor, targets: Tensor, alpha: float, gamma: float) -> Tensor:
    logits, targets = logits.float(), targets.float()
    probs = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    p_t = probs * targets + (1 - probs) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * (1 - p_t).pow(gamma) * bce).sum()


# Elements per block of the fused focal loss: 2^16 fp32 values (256 KiB) per temporary fit in L2.
_FOCAL_BLOCK = 1 << 16


def _focal_loss_and_grad(logits: Tensor, targets: Tensor, alpha: float, gamma: float,
                         need_grad: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """Sum of the focal loss over one flat block and, if asked, its elementwise gradient.

    ``d focal / dx = alpha_t [(1 - p_t)^gamma (p - t) - gamma (1 - p_t)^(gamma - 1) (2t - 1) p (1 - p) BCE]``
    (``dp/dx = p(1 - p)``, ``dp_t/dx = (2t - 1) p(1 - p)``, ``dBCE/dx = p - t``).
    """
    x, t = logits.float(), targets.float()
    p = x.sigmoid()
    bce = F.binary_cross_entropy_with_logits(x, t, reduction='none')
    one_minus_pt = p + t - 2 * p * t  # 1 - (p t + (1 - p)(1 - t))
    alpha_t = (1 - alpha) + (2 * alpha - 1) * t
    modulator = one_minus_pt.pow(gamma)
    loss = (alpha_t * modulator * bce).sum()
    if not need_grad:
        return loss, None
    if gamma == 2.0:
        d_modulator = 2 * one_minus_pt
    elif gamma == 0.0:
        d_modulator = torch.zeros_like(one_minus_pt)
    else:
        d_modulator = gamma * one_minus_pt.pow(gamma - 1)
    grad = alpha_t * (modulator * (p - t) - d_modulator * (2 * t - 1) * p * (1 - p) * bce)
    return loss, grad


class _FusedSigmoidFocalLossSum(torch.autograd.Function):
    """``sum`` of the sigmoid focal loss over all elements; saves only its inputs (see
    :func:`sigmoid_focal_loss`)."""

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor, alpha: float, gamma: float) -> Tensor:
        ctx.save_for_backward(logits, targets)
        ctx.alpha, ctx.gamma = alpha, gamma
        flat_x, flat_t = logits.reshape(-1), targets.reshape(-1)
        total = logits.new_zeros((), dtype=torch.float32)
        for start in range(0, flat_x.numel(), _FOCAL_BLOCK):
            block = slice(start, start + _FOCAL_BLOCK)
            total += _focal_loss_and_grad(flat_x[block], flat_t[block], alpha, gamma, need_grad=False)[0]
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor):
        logits, targets = ctx.saved_tensors
        grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
        flat_x, flat_t, flat_g = logits.reshape(-1), targets.reshape(-1), grad.view(-1)
        scale = grad_output.float()
        for start in range(0, flat_x.numel(), _FOCAL_BLOCK):
            block = slice(start, start + _FOCAL_BLOCK)
            flat_g[block] = _focal_loss_and_grad(flat_x[block], flat_t[block], ctx.alpha, ctx.gamma,
                                                 need_grad=True)[1] * scale
        return grad, None, None, None


def dice_loss(point_logits: Tensor, point_targets: Tensor, num_masks: float,
              smooth: float = 1.0) -> Tensor:
    """``sum_m [1 - (2 sum_p(p t) + smooth) / (sum_p p + sum_p t + smooth)] / num_masks``.

    Args:
        point_logits: ``Tensor[M, P]`` (``p = sigmoid(logit)``); point_targets: ``Tensor[M, P]``.

    Returns:
        fp32 scalar.
    """
    probs = point_logits.float().sigmoid()
    targets = point_targets.float()
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + smooth) / (denominator + smooth)).sum() / num_masks


def classification_loss(cls_logits: Tensor, target_labels: Tensor,
                        no_object_weight: float = 0.1) -> Tensor:
    """Class-weighted cross-entropy, ``sum_i w[y_i] CE_i / sum_i w[y_i]``.

    Args:
        cls_logits: ``Tensor[B, Q, C+1]``; target_labels: ``LongTensor[B, Q]`` (C = no-object).
        no_object_weight: weight of class C; other classes weigh 1.

    Returns:
        fp32 scalar (mmdet's ``avg_factor=class_weight[labels].sum()``).
    """
    logits = cls_logits.float().flatten(0, -2)
    weight = logits.new_ones(logits.shape[-1])
    weight[-1] = no_object_weight
    return F.cross_entropy(logits, target_labels.flatten(), weight=weight)


def num_masks_across_ranks(local_count: float, device: torch.device) -> float:
    """Mean of ``local_count`` over distributed ranks, at least 1 (a no-op when not distributed)."""
    count = float(local_count)
    if get_world_size() > 1:
        buf = torch.tensor([count], dtype=torch.float32, device=device)
        all_reduce(buf, op='mean')
        count = float(buf.item())
    return max(count, 1.0)


def set_name(set_index: int, num_sets: int) -> str:
    """Loss-key style name of a prediction set: ``'d0'``..``'d{S-2}'``, ``'final'``."""
    return 'final' if set_index == num_sets - 1 else f'd{set_index}'


@register_model
class M2FCriterion(nn.Module):
    """Hungarian-matched, point-sampled Mask2Former loss over all prediction sets.

    Args:
        num_classes: C (checked against the class logits when given).
        num_points: P, points per mask for matching and for the mask losses (112 * 112).
        oversample_ratio, importance_sample_ratio: importance sampling of the loss points.
        cls_weight, mask_weight, dice_weight: loss weights.
        no_object_weight: cross-entropy weight of the no-object class.
        assigner: assigner config; default ``M2FHungarianMatcher`` with the loss weights.
        full_mask: compute matching and mask losses on every pixel instead of sampled points (the
            MaskFormer-style loss; the paper's memory ablation). No random draws then. The mask
            losses are at the GT resolution (predictions upsampled bilinearly). Shorthand for
            ``match_on='masks', loss_on='masks'``.
        match_on, loss_on: ``'points'`` or ``'masks'``, separately for the matching costs and for
            the mask losses (the paper's matching-loss x training-loss table); default: both
            ``'points'``, or both ``'masks'`` with ``full_mask``. Give either these or ``full_mask``.
        match_at: with matching on masks, where matching costs are computed: ``'gt'`` (predictions
            upsampled to the GT resolution) or ``'prediction'`` (GT masks nearest-downsampled to the
            mask-logit resolution, as MaskFormer and mmdet's MaskFormerHead).
        mask_loss: ``'bce'`` (Mask2Former) or ``'focal'`` (MaskFormer: sigmoid focal loss, alpha
            ``focal_alpha``, gamma ``focal_gamma``, mean over points / pixels).
    """

    def __init__(self, num_classes: Optional[int] = None, num_points: int = 12544,
                 oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75,
                 cls_weight: float = 2.0, mask_weight: float = 5.0, dice_weight: float = 5.0,
                 no_object_weight: float = 0.1, assigner: Optional[dict] = None,
                 full_mask: bool = False, match_at: str = 'gt', mask_loss: str = 'bce',
                 focal_alpha: float = 0.25, focal_gamma: float = 2.0, match_on: Optional[str] = None,
                 loss_on: Optional[str] = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_points = int(num_points)
        self.oversample_ratio = float(oversample_ratio)
        self.importance_sample_ratio = float(importance_sample_ratio)
        self.cls_weight, self.mask_weight = float(cls_weight), float(mask_weight)
        self.dice_weight, self.no_object_weight = float(dice_weight), float(no_object_weight)
        if mask_loss not in ('bce', 'focal'):
            raise M2FConfigError(f"criterion mask_loss={mask_loss!r}: use 'bce' (Mask2Former) or 'focal' (MaskFormer)")
        if full_mask and (match_on is not None or loss_on is not None):
            raise M2FConfigError(f'criterion full_mask=True with match_on={match_on!r} / loss_on={loss_on!r}: give '
                                 "either full_mask (both on masks) or match_on / loss_on ('points' or 'masks')")
        default = 'masks' if full_mask else 'points'
        match_on, loss_on = match_on or default, loss_on or default
        for key, value in (('match_on', match_on), ('loss_on', loss_on)):
            if value not in ('points', 'masks'):
                raise M2FConfigError(f"criterion {key}={value!r}: use 'points' (sampled points) or 'masks' (every pixel)")
        if match_at not in ('gt', 'prediction'):
            raise M2FConfigError(f"criterion match_at={match_at!r}: use 'gt' or 'prediction'")
        if match_at == 'prediction' and match_on != 'masks':
            raise M2FConfigError("criterion match_at='prediction' needs full_mask=True (with sampled points, matching "
                                 "is at the points); set full_mask=True (or match_on='masks') or leave match_at out")
        self.mask_loss, self.match_at = mask_loss, match_at
        self.focal_alpha, self.focal_gamma = float(focal_alpha), float(focal_gamma)
        if assigner is None:
            assigner = dict(type='M2FHungarianMatcher', cls_weight=cls_weight,
                            mask_weight=mask_weight, dice_weight=dice_weight, mask_cost=mask_loss,
                            focal_alpha=focal_alpha, focal_gamma=focal_gamma)
        self.assigner = TASK_UTILS.build(assigner) if isinstance(assigner, dict) else assigner
        self.match_on, self.loss_on = match_on, loss_on
        self.full_mask = match_on == loss_on == 'masks'

    def forward(self, cls_logits_per_set: Sequence[Tensor], mask_logits_per_set: Sequence[MaskLogits],
                batch_gt_labels: List[Tensor], batch_gt_masks: List[Tensor]) -> Dict[str, Tensor]:
        """Losses of every set: ``loss_cls/mask/dice`` (last set), ``d{i}.loss_*`` (others).

        Args:
            cls_logits_per_set: S x ``Tensor[B, Q, C+1]``.
            mask_logits_per_set: S x ``Tensor[B, Q, h, w]``, or S x
                :class:`~m2f_mm.models.factored_masks.FactoredMasks` (the same logits as their two
                factors: the criterion then computes only the logits it uses; same losses).
            batch_gt_labels: B x ``LongTensor[G_b]`` in ``[0, C)``.
            batch_gt_masks: B x ``Tensor[G_b, H, W]`` (bool or 0/1).
        """
        num_sets = len(cls_logits_per_set)
        if num_sets == 0 or len(mask_logits_per_set) != num_sets:
            raise ValueError(f'got {num_sets} class-logit sets and {len(mask_logits_per_set)} '
                             f'mask-logit sets; need the same non-zero number')
        batch_size, _, num_cls = cls_logits_per_set[0].shape
        if self.num_classes is not None and num_cls != self.num_classes + 1:
            raise ValueError(f'class logits have {num_cls} channels, expected num_classes + 1 = '
                             f'{self.num_classes + 1}')
        if len(batch_gt_labels) != batch_size or len(batch_gt_masks) != batch_size:
            raise ValueError(f'{batch_size} images but {len(batch_gt_labels)} GT label sets and '
                             f'{len(batch_gt_masks)} GT mask sets')
        for b, (labels, masks) in enumerate(zip(batch_gt_labels, batch_gt_masks)):
            if labels.dim() != 1 or masks.dim() != 3 or masks.shape[0] != labels.shape[0]:
                raise ValueError(f'image {b}: gt labels {tuple(labels.shape)} and gt masks '
                                 f'{tuple(masks.shape)} must be [G] and [G, H, W]')
        device = cls_logits_per_set[0].device
        batch_gt_labels = [labels.to(device) for labels in batch_gt_labels]
        batch_gt_masks = [masks.to(device) for masks in batch_gt_masks]
        self._check_labels(batch_gt_labels, num_cls - 1)
        # Normaliser = GT segments (as in the paper's code). mmdet 3.3 counts matched pairs and
        # an image without GT as 1; the two differ only for such images or when G_b > Q.
        local = sum(int(labels.shape[0]) for labels in batch_gt_labels)
        num_masks = num_masks_across_ranks(local, device)
        per_set = []
        with torch.autocast(device_type=device.type, enabled=False):
            for s in range(num_sets):
                per_set.append(self._loss_single_set(cls_logits_per_set[s], mask_logits_per_set[s],
                                                     batch_gt_labels, batch_gt_masks, num_masks,
                                                     s, set_name(s, num_sets)))
        losses: Dict[str, Tensor] = {}
        for s in [num_sets - 1] + list(range(num_sets - 1)):
            prefix = '' if s == num_sets - 1 else f'd{s}.'
            for key, value in zip(('loss_cls', 'loss_mask', 'loss_dice'), per_set[s]):
                losses[prefix + key] = value
        return losses

    # -- one prediction set -------------------------------------------------------------------

    def _match_set(self, cls_logits: Tensor, mask_logits: MaskLogits, gt_labels: List[Tensor],
                   gt_masks: List[Tensor], set_index: int,
                   name: str) -> Tuple[List[Tuple[Tensor, Tensor]], Dict[int, str]]:
        """Per-image ``(query_idx, gt_idx)`` for one set, and the images with non-finite
        predictions (unmatched); one host transfer for the batch."""
        batch_size = cls_logits.shape[0]
        device = cls_logits.device
        with torch.no_grad():
            coords = [None if self.match_on == 'masks' else uniform_points(1, self.num_points, device)
                      for _ in range(batch_size)]  # mmdet's draw: rand((1, P, 2)) per image
            terms = []
            for b in range(batch_size):
                if coords[b] is not None:
                    pred_pts = image_point_logits(mask_logits, b, coords[b])
                    gt_pts = sample_at_points(gt_masks[b], coords[b])
                else:
                    pred_pts, gt_pts = self._sample(image_mask_logits(mask_logits, b).detach(), gt_masks[b],
                                                    None, at_prediction=self.match_at == 'prediction')
                terms.append(self.assigner.cost_terms(cls_logits[b], pred_pts, gt_labels[b],
                                                      gt_pts))
            sums = torch.stack([  # [2, B]; a NaN/inf anywhere makes its image's sum non-finite
                cls_logits.detach().sum(dim=(1, 2), dtype=torch.float32),
                per_image_finite_sums(mask_logits)])
            flat = torch.cat([sums.flatten()] + [t.flatten() for t in terms]).cpu()
        bad = self._non_finite_images(flat[:2 * batch_size].view(2, batch_size), cls_logits,
                                      mask_logits, name)
        matches, offset = [], 2 * batch_size
        for b, t in enumerate(terms):
            terms_cpu = flat[offset:offset + t.numel()].view(t.shape)
            offset += t.numel()
            if b not in bad and not bool(torch.isfinite(terms_cpu).all()):
                # finite but huge logits can overflow a cost (e.g. the BCE sum over points)
                bad[b] = 'matching costs'
                self._warn_non_finite(b, 'matching costs', name)
            if b in bad:
                empty = torch.zeros(0, dtype=torch.long, device=device)
                matches.append((empty, empty.clone()))
                continue
            query_idx, gt_idx = self.assigner.match_terms(terms_cpu, set_index=set_index,
                                                          image_index=b)
            matches.append((query_idx.to(device), gt_idx.to(device)))
        return matches, bad

    def _sample(self, maps: Tensor, gt_masks: Tensor, coords: Optional[Tensor],
                at_prediction: bool = False) -> Tuple[Tensor, Tensor]:
        """Predicted ``[N, h, w]`` and GT ``[G, H, W]`` maps -> ``[N, P]``, ``[G, P]`` values: at
        ``coords`` ``[1 or N, P, 2]``, or every pixel of the GT resolution (predictions upsampled), or
        with ``at_prediction`` every pixel of the prediction resolution (GT nearest-downsampled)."""
        if coords is not None:
            return sample_at_points(maps, coords), sample_at_points(gt_masks, coords)
        if gt_masks.shape[0] == 0:  # full_mask, no GT: no cost to compute
            return maps.flatten(1), maps.new_zeros((0, maps[0].numel()))
        if at_prediction:
            small = F.interpolate(gt_masks.unsqueeze(1).float(), size=maps.shape[-2:], mode='nearest')
            return maps.flatten(1), small.flatten(1)
        maps = F.interpolate(maps.unsqueeze(1), size=gt_masks.shape[-2:], mode='bilinear',
                             align_corners=False).squeeze(1)
        return maps.flatten(1), gt_masks.flatten(1).float()

    @staticmethod
    def _check_labels(batch_gt_labels: List[Tensor], num_classes: int) -> None:
        """GT labels must lie in ``[0, C)`` (one host sync for the whole batch)."""
        if not batch_gt_labels:
            return
        bad = torch.stack([((lab < 0) | (lab >= num_classes)).sum() for lab in batch_gt_labels])
        if bool(bad.any()):
            b = int(torch.nonzero(bad)[0, 0])
            raise ValueError(f'gt labels of image {b} hold values outside [0, {num_classes}): '
                             f'{batch_gt_labels[b].tolist()}')

    @staticmethod
    def _non_finite_images(sums: Tensor, cls_logits: Tensor, mask_logits: MaskLogits,
                           name: str) -> Dict[int, str]:
        """``sums: Tensor[2, B]`` (host) = per-image class- and mask-logit sums -> {image: what}."""
        bad = {}
        for b in range(sums.shape[1]):
            # A non-finite sum may be an fp32 overflow: confirm on the tensors themselves.
            if not torch.isfinite(sums[0, b]) and not bool(torch.isfinite(cls_logits[b]).all()):
                bad.setdefault(b, 'cls_logits')
            if not torch.isfinite(sums[1, b]) and not image_is_finite(mask_logits, b):
                bad.setdefault(b, 'mask_logits')
        for b, what in bad.items():
            M2FCriterion._warn_non_finite(b, what, name)
        return bad

    @staticmethod
    def _warn_non_finite(image: int, what: str, name: str) -> None:
        warnings.warn(f"non-finite (NaN/inf) {what} in prediction set '{name}', image {image}: not matched, "
                      "and the set's loss terms are NaN", RuntimeWarning, stacklevel=4)

    def _loss_single_set(self, cls_logits: Tensor, mask_logits: MaskLogits, gt_labels: List[Tensor],
                         gt_masks: List[Tensor], num_masks: float, set_index: int,
                         name: str) -> Tuple[Tensor, Tensor, Tensor]:
        """``(loss_cls, loss_mask, loss_dice)`` of one set, weighted."""
        batch_size, num_queries, num_cls = cls_logits.shape
        matches, bad = self._match_set(cls_logits, mask_logits, gt_labels, gt_masks, set_index, name)
        # 0, or NaN for a set with non-finite predictions (see the module docstring).
        poison = cls_logits.new_full((), float('nan') if bad else 0.0, dtype=torch.float32)
        target_labels = torch.full((batch_size, num_queries), num_cls - 1, dtype=torch.long,
                                   device=cls_logits.device)
        batch_idx, gt_parts = [], []
        for b, (query_idx, gt_idx) in enumerate(matches):
            target_labels[b, query_idx] = gt_labels[b][gt_idx].long()
            batch_idx.append(torch.full_like(query_idx, b))
            gt_parts.append(gt_masks[b][gt_idx])
        loss_cls = classification_loss(cls_logits, target_labels,
                                       self.no_object_weight) * self.cls_weight
        batch_idx = torch.cat(batch_idx)
        if batch_idx.numel() == 0:  # no GT in the whole batch: zero, but keep the graph
            parts = tuple(mask_logits) if isinstance(mask_logits, FactoredMasks) else (mask_logits, )
            zero = sum(part.sum(dtype=torch.float32) for part in parts) * 0.0
            return loss_cls + poison, zero + poison, zero + poison
        # [M, h, w], ordered by (image, query) like mmdet's mask_preds[mask_weights > 0]
        matched = matched_mask_logits(mask_logits, [query_idx for query_idx, _ in matches])
        if self.loss_on == 'masks':
            pred_pts, target_pts = self._sample(matched, torch.cat(gt_parts), None)
        else:
            # ordered=False: the losses sum over points, so top-k's sort is wasted work
            coords = importance_sample_points(matched.unsqueeze(1), self.num_points,
                                              self.oversample_ratio,
                                              self.importance_sample_ratio,
                                              ordered=False)  # [M, P, 2]
            with torch.no_grad():
                target_pts, offset = [], 0
                for part in gt_parts:
                    target_pts.append(sample_at_points(part, coords[offset:offset + len(part)]))
                    offset += len(part)
                target_pts = torch.cat(target_pts)
            pred_pts = sample_at_points(matched, coords)
        if self.mask_loss == 'focal':
            loss_mask = sigmoid_focal_loss(pred_pts, target_pts, num_masks, self.focal_alpha,
                                           self.focal_gamma) * self.mask_weight
        else:
            loss_mask = sigmoid_bce_loss(pred_pts, target_pts, num_masks) * self.mask_weight
        loss_dice = dice_loss(pred_pts, target_pts, num_masks) * self.dice_weight
        return loss_cls + poison, loss_mask + poison, loss_dice + poison
