"""Mask logits kept as their two factors, for the training losses.

Shape legend: B images, Q queries, E mask-embedding width, h x w stride-4 size, P points, M rows
(queries) taken from one image.

A prediction set's mask logits are ``einsum('bqe,behw->bqhw', embeds, pixels)``: each query's mask
embedding dotted with the per-pixel embeddings. Bilinear resizing and bilinear point sampling are linear
maps over the pixels, so they commute with that dot product: sampling the per-pixel embeddings at P
points and dotting gives the same P logits as sampling the dense [Q, h, w] logits there, and one matched
query's dense logits need only its own row. :class:`FactoredMasks` hands the criterion both factors, and
the criterion asks for exactly the logits it uses:

* matching (no gradient): the Q x P point logits of one image, through the P points
  (``P * E`` samples and ``Q * E * P`` products) when P < h*w, else through the dense Q x h x w logits
  (``Q * E * h*w``), whichever is fewer products;
* the mask losses: the dense logits of the M matched queries only (``M * E * h*w`` with its gradient),
  instead of all B x Q of every set.

The dense order (every set's [B, Q, h, w], then sampling) stays available: a plain tensor in place of
:class:`FactoredMasks` takes it, and ``M2FHead(train_mask_order='dense')`` gives it.
"""
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .point_sampling import sample_at_points

__all__ = ['FactoredMasks', 'MaskLogits', 'image_mask_logits', 'matched_mask_logits', 'image_point_logits',
           'per_image_finite_sums', 'image_is_finite']


class FactoredMasks(NamedTuple):
    """One prediction set's mask logits as ``embeds [B, Q, E]`` x ``pixels [B, E, h, w]``."""
    embeds: Tensor
    pixels: Tensor

    @property
    def shape(self) -> Tuple[int, int, int, int]:
        """``(B, Q, h, w)``, the shape of the dense logits."""
        return (self.embeds.shape[0], self.embeds.shape[1], self.pixels.shape[-2], self.pixels.shape[-1])

    def dense(self) -> Tensor:
        """``Tensor[B, Q, h, w]``, as the head's dense order computes them."""
        return torch.einsum('bqe,behw->bqhw', self.embeds, self.pixels)


MaskLogits = Union[Tensor, FactoredMasks]  # Tensor[B, Q, h, w] or its factors


def image_mask_logits(masks: MaskLogits, image: int, rows: Optional[Tensor] = None) -> Tensor:
    """Dense logits of ``image``: ``Tensor[Q, h, w]``, or ``[M, h, w]`` of the queries ``rows`` (LongTensor[M]).

    Keeps the graph; returned in fp32, the criterion's precision (a factored set computes only those rows, in
    fp32 or, for float64 factors, in float64 first, as the dense order would).
    """
    if isinstance(masks, FactoredMasks):
        embeds = masks.embeds[image] if rows is None else masks.embeds[image, rows]
        dtype = _at_least_fp32(embeds)
        return torch.einsum('me,ehw->mhw', embeds.to(dtype), masks.pixels[image].to(dtype)).float()
    return (masks[image] if rows is None else masks[image, rows]).float()


def matched_mask_logits(masks: MaskLogits, rows_per_image: Sequence[Tensor]) -> Tensor:
    """Dense logits of the matched queries, ``Tensor[M, h, w]`` fp32, ordered by (image, row): image b's
    rows ``rows_per_image[b]`` (LongTensor[M_b]). Keeps the graph.

    A factored set takes each image's factors through one ``unbind`` (whose backward stacks the images'
    gradients once), not a per-image index (whose backward would fill a [B, E, h, w] zero tensor per image).
    """
    if isinstance(masks, FactoredMasks):
        dtype = _at_least_fp32(masks.embeds)
        embeds, pixels = masks.embeds.unbind(0), masks.pixels.unbind(0)
        parts = [torch.einsum('me,ehw->mhw', embeds[b][rows].to(dtype), pixels[b].to(dtype)).float()
                 for b, rows in enumerate(rows_per_image)]
        return torch.cat(parts)
    batch_idx = torch.cat([torch.full_like(rows, b) for b, rows in enumerate(rows_per_image)])
    return masks[batch_idx, torch.cat(list(rows_per_image))].float()


def _at_least_fp32(tensor: Tensor) -> torch.dtype:
    return torch.promote_types(tensor.dtype, torch.float32)


@torch.no_grad()
def image_point_logits(masks: MaskLogits, image: int, coords: Tensor) -> Tensor:
    """The Q queries' logits of ``image`` at ``coords: Tensor[1, P, 2]`` (shared points): ``Tensor[Q, P]``
    fp32, no gradient (matching). Factored: through the points when P < h*w, else through the dense
    logits (the fewer products, module docstring)."""
    if isinstance(masks, FactoredMasks):
        height, width = masks.pixels.shape[-2:]
        dtype = _at_least_fp32(masks.embeds)
        embeds, pixels = masks.embeds[image].detach().to(dtype), masks.pixels[image].detach().to(dtype)
        if coords.shape[1] < height * width:
            return (embeds @ sample_at_points(pixels, coords.to(dtype))).float()  # [E, P] samples first
        return sample_at_points(torch.einsum('qe,ehw->qhw', embeds, pixels).float(), coords)
    return sample_at_points(masks[image].detach().float(), coords)


@torch.no_grad()
def per_image_finite_sums(masks: MaskLogits) -> Tensor:
    """``Tensor[B]`` fp32 whose entry b is non-finite when image b's logits may be (a NaN / inf in either
    factor of a factored set, or in the dense logits)."""
    if isinstance(masks, FactoredMasks):
        return (masks.embeds.detach().sum(dim=(1, 2), dtype=torch.float32)
                + masks.pixels.detach().sum(dim=(1, 2, 3), dtype=torch.float32))
    return masks.detach().sum(dim=(1, 2, 3), dtype=torch.float32)


def image_is_finite(masks: MaskLogits, image: int) -> bool:
    """Whether every value image ``image``'s logits are computed from is finite."""
    if isinstance(masks, FactoredMasks):
        return bool(torch.isfinite(masks.embeds[image]).all()) and bool(torch.isfinite(masks.pixels[image]).all())
    return bool(torch.isfinite(masks[image]).all())
