"""Semantic label PNGs (mmseg) loaded only when they fit their image.

mmseg's ``LoadAnnotations`` reads a label PNG of any size; the resizes and crops that follow treat
image and label map separately, so a label PNG of another size than its image trains on labels
that do not cover the pixels they name. ``M2FLoadSegAnnotations`` is mmseg's loader that refuses
such a sample with one line naming both files (``tools/misc/check_dataset.py`` lists them all).
"""
from mmseg.datasets.transforms import LoadAnnotations as SegLoadAnnotations

from ..registry import register_transform
from .panoptic import SIZE_DIFFERS, AnnotationMismatchError


def label_size_mismatch(label_hw, image_hw, label_path: str, img_path: str):
    """The error to raise when a label map (its shape) and its decoded image (H x W) differ, else None."""
    if image_hw is None or tuple(label_hw) == tuple(image_hw)[:2]:
        return None
    return AnnotationMismatchError(f'label PNG {label_path!r} is {"x".join(map(str, label_hw))} but its image '
                                   f'{img_path!r} decodes to {image_hw[0]}x{image_hw[1]} (HxW)', SIZE_DIFFERS)


@register_transform
class M2FLoadSegAnnotations(SegLoadAnnotations):
    """mmseg's ``LoadAnnotations`` (same arguments and output) that raises
    :class:`~.panoptic.AnnotationMismatchError` when the label map's size differs from the image's
    (``ori_shape``, set by ``LoadImageFromFile``; not checked when no image was loaded)."""

    def _load_seg_map(self, results: dict) -> None:
        super()._load_seg_map(results)
        image_hw = tuple(results['ori_shape'])[:2] if 'ori_shape' in results else None
        mismatch = label_size_mismatch(results['gt_seg_map'].shape, image_hw, results.get('seg_map_path'),
                                       results.get('img_path'))
        if mismatch is not None:
            raise mismatch
