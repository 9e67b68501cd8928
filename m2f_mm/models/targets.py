"""Training targets: the (labels, binary masks) segments that queries are matched to.

Shape legend: Gt thing instances, G segments in all (things + stuff), H x W the annotation
resolution (the padded batch input), C = num_things + num_stuff classes (things first).

- panoptic: every thing instance, then one mask per stuff class present in the semantic map
  (ascending class id). Thing classes and ``ignore_index`` pixels of the semantic map are not
  segments (things come from the instances). Without a semantic map: things only (instance seg).
- semantic: one mask per class present in the semantic map, ascending class id.

Malformed annotations raise ``ValueError`` naming the field (and the image when
``image_index`` is given) instead of failing later inside matching with an unrelated message.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ['panoptic_targets', 'semantic_targets']

MasksLike = Union[Tensor, Sequence[Tensor], object]  # Tensor[Gt,H,W], list of [H,W], BitmapMasks


def _where(image_index: Optional[int]) -> str:
    return '' if image_index is None else f' (image {image_index})'


def _as_sem_map(sem_seg: Tensor, image_index: Optional[int]) -> Tensor:
    """``Tensor[H,W]`` or ``Tensor[1,H,W]`` -> ``Tensor[H,W]``."""
    if not isinstance(sem_seg, Tensor):
        raise ValueError(f'sem_seg must be a Tensor, got {type(sem_seg).__name__}'
                         f'{_where(image_index)}')
    if sem_seg.dim() == 3 and sem_seg.shape[0] == 1:
        sem_seg = sem_seg[0]
    if sem_seg.dim() != 2:
        raise ValueError(f'sem_seg must be [H, W] or [1, H, W], got {tuple(sem_seg.shape)}'
                         f'{_where(image_index)}')
    if sem_seg.is_floating_point():
        if not bool((sem_seg == sem_seg.round()).all()):
            raise ValueError(f'sem_seg holds non-integer values{_where(image_index)}')
    return sem_seg.long()


def _check_sem_values(sem: Tensor, num_classes: Optional[int], ignore_index: int,
                      image_index: Optional[int]) -> Tensor:
    """Sorted class ids present in ``sem`` (without ``ignore_index``), validated."""
    present = torch.unique(sem)  # sorted
    present = present[present != ignore_index]
    low_bad = present[present < 0]
    high_bad = present[present >= num_classes] if num_classes is not None else present[:0]
    bad = torch.cat([low_bad, high_bad])
    if bad.numel():
        raise ValueError(
            f'sem_seg holds label(s) {bad.tolist()} outside [0, {num_classes}) that are not '
            f'ignore_index={ignore_index}{_where(image_index)}')
    return present


def _as_mask_stack(masks: MasksLike, image_index: Optional[int]) -> Tensor:
    """Thing masks as ``BoolTensor[Gt, H, W]``, checking every mask has the same size."""
    if hasattr(masks, 'to_tensor') and not isinstance(masks, Tensor):  # mmdet BitmapMasks
        masks = masks.to_tensor(dtype=torch.bool, device='cpu')
    if isinstance(masks, Tensor):
        if masks.dim() != 3:
            raise ValueError(f'thing_masks must be [Gt, H, W], got {tuple(masks.shape)}'
                             f'{_where(image_index)}')
        return masks if masks.dtype == torch.bool else masks != 0
    masks = list(masks)
    if not masks:
        return torch.zeros((0, 0, 0), dtype=torch.bool)
    size = tuple(masks[0].shape)
    for i, mask in enumerate(masks):
        if mask.dim() != 2 or tuple(mask.shape) != size:
            raise ValueError(f'thing_masks[{i}] has shape {tuple(mask.shape)}, thing_masks[0] '
                             f'has {size}: all GT masks must share one size'
                             f'{_where(image_index)}')
    return torch.stack([m != 0 for m in masks])


def panoptic_targets(thing_labels: Tensor,
                     thing_masks: MasksLike,
                     sem_seg: Optional[Tensor],
                     num_things: int,
                     num_stuff: int,
                     ignore_index: int = 255,
                     *,
                     image_index: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Panoptic (or, with ``sem_seg=None``, instance) segments of one image.

    Args:
        thing_labels: ``LongTensor[Gt]`` class ids in ``[0, num_things + num_stuff)``.
        thing_masks: ``Tensor[Gt, H, W]`` (bool or 0/1), a list of ``[H, W]`` masks, or mmdet
            ``BitmapMasks``.
        sem_seg: ``Tensor[H, W]`` or ``[1, H, W]`` class map (things, stuff, ``ignore_index``)
            or ``None``.
        num_things, num_stuff: class counts; stuff ids are ``[num_things, num_things+num_stuff)``.
        ignore_index: void label of ``sem_seg``.
        image_index: only used in error messages.

    Returns:
        ``labels: LongTensor[G]``, ``masks: BoolTensor[G, H, W]``: things in input order, then
        stuff classes present in ``sem_seg`` in ascending id. On ``thing_labels.device``.
    """
    num_classes = num_things + num_stuff
    if not isinstance(thing_labels, Tensor) or thing_labels.dim() != 1:
        shape = tuple(thing_labels.shape) if isinstance(thing_labels, Tensor) else None
        raise ValueError(f'thing_labels must be a 1-D tensor, got {shape or type(thing_labels)}'
                         f'{_where(image_index)}')
    device = thing_labels.device
    labels = thing_labels.long()
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.numel():
        raise ValueError(f'thing_labels holds label(s) {bad.tolist()} outside [0, {num_classes})'
                         f'{_where(image_index)}')
    masks = _as_mask_stack(thing_masks, image_index).to(device)
    if masks.shape[0] != labels.shape[0]:
        raise ValueError(f'thing_masks has {masks.shape[0]} masks but thing_labels has '
                         f'{labels.shape[0]} labels{_where(image_index)}')
    if sem_seg is None:
        return labels, masks
    sem = _as_sem_map(sem_seg, image_index).to(device)
    if labels.numel() and tuple(masks.shape[-2:]) != tuple(sem.shape):
        raise ValueError(f'thing_masks have size {tuple(masks.shape[-2:])} but sem_seg has '
                         f'{tuple(sem.shape)}: GT masks must match the semantic map'
                         f'{_where(image_index)}')
    present = _check_sem_values(sem, num_classes, ignore_index, image_index)
    stuff_ids = present[present >= num_things]
    stuff_masks = sem.unsqueeze(0) == stuff_ids.view(-1, 1, 1)  # [S, H, W]
    if not labels.numel():
        return stuff_ids, stuff_masks
    return torch.cat([labels, stuff_ids]), torch.cat([masks, stuff_masks])


def semantic_targets(sem_seg: Tensor,
                     ignore_index: int = 255,
                     *,
                     num_classes: Optional[int] = None,
                     image_index: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """One segment per class present in a semantic map.

    Args:
        sem_seg: ``Tensor[H, W]`` or ``[1, H, W]`` class ids, ``ignore_index`` = void.
        ignore_index: void label (no segment, no loss).
        num_classes: when given, labels outside ``[0, num_classes)`` raise ``ValueError``.
        image_index: only used in error messages.

    Returns:
        ``labels: LongTensor[G]`` ascending, ``masks: BoolTensor[G, H, W]``.
    """
    sem = _as_sem_map(sem_seg, image_index)
    labels = _check_sem_values(sem, num_classes, ignore_index, image_index)
    return labels, sem.unsqueeze(0) == labels.view(-1, 1, 1)
