"""Dataset converters: the annotation formats people have -> the on-disk layout m2f_mm's configs read.

Every converter writes one split ``S`` (``train``, ``val``, ...) of this layout under ``OUT``::

    OUT/S/<file_name>                               the images (copied, or linked with images='link')
    OUT/annotations/panoptic_S.json + panoptic_S/   COCO panoptic, PNG id = R + 256 G + 256^2 B, 0 = VOID
    OUT/annotations/instances_S.json                COCO instances of the thing segments (RLE; crowd:
                                                    uncompressed RLE, iscrowd=1)
    OUT/annotations/semantic_S/<stem>.png           mmseg label PNG: index into classes.json's
                                                    ``classes``, 255 = ignore
    OUT/classes.json                                class names, palette, thing / stuff split

(the layout of ``tools/dataset_converters/make_synthetic_data.py``; the semantic converter writes
only the images, the label PNGs and classes.json). Category ids are the input's; the panoptic file
lists the categories in label order, and label ``k`` of the panoptic loader (things first) is value
``k`` of the semantic PNGs, unless a converter says otherwise (Mapillary keeps its own order).

Pure functions over numpy arrays, PIL, pycocotools and json; no torch. Input problems raise
:class:`ConversionError` with one line naming the file, the value and the fix.

* :mod:`.coco_instances`: COCO instances JSON (+ stuff label PNGs) -> panoptic;
* :mod:`.instance_pngs`: instance-id PNGs + a class table (or class PNGs) -> panoptic;
* :mod:`.semantic_pngs`: semantic label PNGs + a class table -> mmseg label PNGs;
* :mod:`.mapillary`: the Mapillary Vistas release -> panoptic + semantic.
"""
from .layout import Category, ConversionError, SplitWriter

__all__ = ['Category', 'ConversionError', 'SplitWriter']
