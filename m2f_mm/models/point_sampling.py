"""Point sampling for Mask2Former's training losses.

Shape legend: N masks (queries of one image, GT segments, or matched pairs), P points per mask,
h x w mask-logit resolution (stride 4), H x W ground-truth mask resolution. Coordinates are
normalised ``(x, y)`` in ``[0, 1] x [0, 1]`` as :func:`mmcv.ops.point_sample` expects
(``align_corners=False``), so one set of coordinates addresses the same image location at any
resolution.

Random draws use the global torch generator of ``device`` with exactly the shapes and order of
mmdet 3.3's ``get_uncertain_point_coords_with_randomness`` (``rand(N, int(P * oversample), 2)``
then ``rand(N, P - int(P * importance_ratio), 2)``), so a seeded run reproduces mmdet's points.
"""
from typing import Optional, Tuple, Union

import torch
from mmcv.ops import point_sample
from torch import Tensor

from ..errors import M2FConfigError

__all__ = [
    'uniform_points', 'sample_at_points', 'draw_importance_candidates',
    'select_uncertain_points', 'importance_sample_points'
]

DeviceLike = Union[torch.device, str, None]

# Masks converted to float and sampled per chunk: a bool [N,H,W] GT stack is never copied whole
# into fp32 (4x its size) at image resolution.
_CHUNK = 16


def uniform_points(num_masks: int,
                   num_points: int,
                   device: DeviceLike = None,
                   dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform random coordinates, ``Tensor[N, P, 2]`` in ``[0, 1)``.

    ``uniform_points(1, P, device)`` is the draw mmdet makes per image for matching.
    """
    return torch.rand((num_masks, num_points, 2), device=device, dtype=dtype)


def sample_at_points(maps: Tensor, coords: Tensor, chunk: int = _CHUNK) -> Tensor:
    """Bilinearly sample single-channel maps at normalised coordinates.

    Args:
        maps: ``Tensor[N, H, W]`` of any dtype (bool / integer masks are converted to the dtype
            of ``coords``, chunk by chunk; floating maps are sampled in their own dtype).
        coords: ``Tensor[N, P, 2]`` per-map points, or ``Tensor[1, P, 2]`` shared by all maps.
        chunk: number of non-floating maps converted to float at a time.

    Returns:
        ``Tensor[N, P]`` (zero-size when ``N == 0``). Differentiable w.r.t. floating ``maps``.
    """
    if maps.dim() != 3 or coords.dim() != 3 or coords.shape[-1] != 2:
        raise ValueError(f'expected maps [N,H,W] and coords [N|1,P,2], got '
                         f'{tuple(maps.shape)} and {tuple(coords.shape)}')
    num_maps, num_points = maps.shape[0], coords.shape[1]
    if coords.shape[0] not in (1, num_maps):
        raise ValueError(f'coords hold {coords.shape[0]} point sets for {num_maps} maps')
    if num_maps == 0:
        out_dtype = maps.dtype if maps.is_floating_point() else coords.dtype
        return maps.new_zeros((0, num_points), dtype=out_dtype)
    if maps.is_floating_point():
        return _sample(maps, coords)
    outs = []
    for start in range(0, num_maps, chunk):
        part = maps[start:start + chunk].to(coords.dtype)
        outs.append(_sample(part, coords if coords.shape[0] == 1 else coords[start:start + chunk]))
    return torch.cat(outs, dim=0)


def _sample(maps: Tensor, coords: Tensor) -> Tensor:
    """``maps: [N, H, W]`` floating, ``coords: [N|1, P, 2]`` -> ``[N, P]``.

    Shared coordinates sample the maps as the N channels of one channels-last image: grid_sample
    then computes each point's corners and weights once instead of N times and reads the N values
    of a corner from one contiguous row (5x faster for 100 queries, bit-identical results).
    """
    if coords.shape[0] == 1 and maps.shape[0] > 1:
        image = maps.unsqueeze(0).contiguous(memory_format=torch.channels_last)
        return point_sample(image, coords).squeeze(0).contiguous()
    return point_sample(maps.unsqueeze(1), coords.expand(maps.shape[0], -1, -1)).squeeze(1)


def _num_split(num_points: int, oversample_ratio: float,
               importance_sample_ratio: float) -> Tuple[int, int, int]:
    """``(candidates, uncertain, fresh)`` point counts, rounded as mmdet rounds them."""
    if oversample_ratio < 1:
        raise M2FConfigError(f'oversample_ratio must be >= 1, got {oversample_ratio}')
    if not 0 <= importance_sample_ratio <= 1:
        raise M2FConfigError(
            f'importance_sample_ratio must be in [0, 1], got {importance_sample_ratio}')
    num_candidates = int(num_points * oversample_ratio)
    num_uncertain = int(importance_sample_ratio * num_points)
    return num_candidates, num_uncertain, num_points - num_uncertain


def draw_importance_candidates(
        num_masks: int,
        num_points: int,
        device: DeviceLike = None,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75) -> Tuple[Tensor, Optional[Tensor]]:
    """The random draws of importance sampling, without looking at any prediction.

    Returns:
        ``candidates: Tensor[N, int(P*oversample_ratio), 2]`` and
        ``fresh: Tensor[N, P - int(P*importance_sample_ratio), 2]`` (``None`` when empty;
        mmdet then draws nothing either).
    """
    num_candidates, _, num_fresh = _num_split(num_points, oversample_ratio,
                                              importance_sample_ratio)
    candidates = torch.rand(num_masks, num_candidates, 2, device=device)
    fresh = torch.rand(num_masks, num_fresh, 2, device=device) if num_fresh > 0 else None
    return candidates, fresh


@torch.no_grad()
def select_uncertain_points(mask_logits: Tensor, candidates: Tensor, fresh: Optional[Tensor],
                            num_uncertain: int, ordered: bool = True) -> Tensor:
    """Keep the ``num_uncertain`` most uncertain candidates per mask, then append ``fresh``.

    Uncertainty is ``-|logit|`` of the logit *sampled at the candidate* (not the sampled
    uncertainty of the coarse map: a point between logits -1 and 1 is maximally uncertain).

    Args:
        mask_logits: ``Tensor[N, 1, h, w]`` (or ``[N, h, w]``).
        candidates: ``Tensor[N, P_c, 2]``; fresh: ``Tensor[N, P_f, 2]`` or ``None``.
        ordered: keep the candidates most uncertain first (mmdet's order). ``False`` keeps the
            same set in an unspecified order, which skips top-k's sort (the losses are sums over
            points, so they do not depend on the order).

    Returns:
        ``Tensor[N, num_uncertain + P_f, 2]`` coordinates, no gradient.
    """
    if mask_logits.dim() == 4:
        mask_logits = mask_logits.squeeze(1)
    uncertainty = -sample_at_points(mask_logits.float(), candidates.float()).abs()  # [N, P_c]
    idx = torch.topk(uncertainty, k=num_uncertain, dim=1, sorted=ordered)[1]  # [N, num_uncertain]
    coords = torch.gather(candidates, 1, idx.unsqueeze(-1).expand(-1, -1, 2))
    if fresh is not None:
        coords = torch.cat((coords, fresh), dim=1)
    return coords


@torch.no_grad()
def importance_sample_points(mask_logits: Tensor,
                             num_points: int,
                             oversample_ratio: float = 3.0,
                             importance_sample_ratio: float = 0.75,
                             ordered: bool = True) -> Tensor:
    """Uncertainty-biased points per mask (PointRend / Mask2Former training).

    Draws ``int(P*oversample_ratio)`` uniform candidates per mask, keeps the
    ``int(P*importance_sample_ratio)`` with the highest ``-|logit|`` and adds fresh uniform
    points up to ``P``. Same RNG draws as mmdet's ``get_uncertain_point_coords_with_randomness``.

    Args:
        mask_logits: ``Tensor[N, 1, h, w]`` class-agnostic mask logits.
        num_points: P.
        ordered: see :func:`select_uncertain_points` (``False``: same points, any order).

    Returns:
        ``Tensor[N, P, 2]`` normalised coordinates, no gradient.
    """
    if mask_logits.dim() != 4 or mask_logits.shape[1] != 1:
        raise ValueError(f'expected mask logits [N,1,h,w], got {tuple(mask_logits.shape)}')
    _, num_uncertain, _ = _num_split(num_points, oversample_ratio, importance_sample_ratio)
    candidates, fresh = draw_importance_candidates(mask_logits.shape[0], num_points,
                                                   mask_logits.device, oversample_ratio,
                                                   importance_sample_ratio)
    return select_uncertain_points(mask_logits, candidates, fresh, num_uncertain, ordered)
