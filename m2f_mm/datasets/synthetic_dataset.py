"""The bundled synthetic dataset's classes as dataset types, so the synthetic configs build without the files.

``M2FSyntheticPanopticDataset`` is :class:`~m2f_mm.datasets.coco_format.M2FPanopticDataset` (any
COCO-panoptic-layout data, classes from the annotation file) whose ``METAINFO`` holds the
generator's classes. As with COCO's ``METAINFO`` in mmdet, those classes only apply when no
annotation file or ``metainfo`` tells otherwise (``m2f_mm/config/classes.py``): pointed at another
dataset's ``data_root``, the same config takes that dataset's classes from its JSON. (The semantic
config has no such fallback: label PNGs carry no names, so its classes come from
``annotations/classes.json``, which the generator writes, or from the label maps.)
``M2FSyntheticInstanceDataset`` is mmdet's ``CocoDataset`` (the generator's ``instances_*.json``) with the
thing classes as its fallback, the same way.
"""
from mmdet.datasets import CocoDataset

from ..registry import register_dataset
from .coco_format import M2FPanopticDataset
from .synthetic_scene import CLASSES, PALETTE, STUFF_CLASSES, THING_CLASSES

SYNTHETIC_METAINFO = dict(classes=tuple(CLASSES), thing_classes=tuple(THING_CLASSES),
                          stuff_classes=tuple(STUFF_CLASSES), palette=[tuple(c) for c in PALETTE])


@register_dataset
class M2FSyntheticPanopticDataset(M2FPanopticDataset):
    """COCO-panoptic-layout data; the synthetic classes when nothing else gives classes (module docstring)."""
    METAINFO = SYNTHETIC_METAINFO



SYNTHETIC_INSTANCE_METAINFO = dict(classes=tuple(THING_CLASSES),
                                   palette=[tuple(c) for c in PALETTE[:len(THING_CLASSES)]])


@register_dataset
class M2FSyntheticInstanceDataset(CocoDataset):
    """COCO-instances data; the synthetic thing classes when nothing else gives classes (module docstring)."""
    METAINFO = SYNTHETIC_INSTANCE_METAINFO
