"""mmdet's ``DetLocalVisualizer`` for m2f_mm configs: an empty panoptic map draws as the plain image.

mmdet 3.3's ``_draw_panoptic_seg`` fails with ``np.stack ... need at least one array to stack`` when
every pixel is VOID (an undertrained model, an image with nothing above ``object_mask_thr``);
``DetInferencer``, ``tools/test.py --show-dir`` and ``DetVisualizationHook`` all go through it. The
mmdet configs of m2f_mm set ``visualizer = dict(type='M2FDetLocalVisualizer')``.

Shape legend: H x W image; ``panoptic_seg.sem_seg`` [1, H, W] = label + instance * INSTANCE_OFFSET.
"""
from typing import List, Optional

import numpy as np
from mmdet.visualization import DetLocalVisualizer

from ..registry import register_visualizer


def has_panoptic_segment(pan: np.ndarray, void_label: int) -> bool:
    """pan [H, W]: True when any pixel is not VOID (``void_label``, as mmdet's visualizer decides it)."""
    return bool((np.asarray(pan) != void_label).any())


@register_visualizer
class M2FDetLocalVisualizer(DetLocalVisualizer):
    """``DetLocalVisualizer`` (same arguments) that draws an all-VOID panoptic map as the plain image."""

    def _draw_panoptic_seg(self, image: np.ndarray, panoptic_seg, classes: Optional[List[str]],
                           palette: Optional[List]) -> np.ndarray:
        pan = np.asarray(panoptic_seg.sem_seg[0])
        if 'label_names' in panoptic_seg:  # open-set maps name their own ignore index, as in mmdet
            void = panoptic_seg.metainfo.get('ignore_index', len(panoptic_seg.metainfo['label_names']))
        else:
            void = len(classes)
        if not has_panoptic_segment(pan, void):
            self.set_image(image)
            return self.get_image()
        return super()._draw_panoptic_seg(image, panoptic_seg, classes, palette)
