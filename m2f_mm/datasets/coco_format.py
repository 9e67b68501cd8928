"""COCO-format panoptic and instance files of other datasets (ADE20K, Cityscapes), without panopticapi.

The standard preparation scripts write these files (see docs/model_zoo.md, "Data"):

* ADE20K panoptic / instance: ``ade20k_panoptic_{train,val}.json`` + PNG folder and
  ``ade20k_instance_{train,val}.json`` (facebookresearch/Mask2Former's ``prepare_ade20k_*.py`` or
  ``tools/dataset_converters/ade20k.py``): string image ids, category ids 0-149 in ADE20K's
  semantic order with things and stuff interleaved;
* Cityscapes panoptic: ``gtFine/cityscapes_panoptic_{train,val}.json`` + PNG folder
  (cityscapesscripts' ``createPanopticImgs``): string image ids, label ids 7-33 with the 11 stuff
  classes before the 8 thing classes, images in per-city folders, PNG names that differ from the
  image names (``*_gtFine_panoptic.png`` for ``*_leftImg8bit.png``).

mmdet's datasets assume otherwise: class names given in the config, labels in the file's category
order, thing classes first (the model's ``num_things_classes`` convention), the PNG named after
the image and images in one folder. The classes here therefore take their class names from the
annotation file when the config gives none, put thing classes first for panoptic data (and write
that order to ``metainfo``, which the PQ metric maps back to category ids by name), read each PNG
name from its annotation, and (Cityscapes) find images in their city's folder.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmdet.datasets import CocoDataset
from mmengine.fileio import get_local_path

from ..errors import M2FConfigError
from ..registry import register_dataset
from ..utils.palette import distinct_palette
from .panoptic import M2FCocoPanopticDataset


def ordered_categories(categories: Sequence[dict], classes: Optional[Sequence[str]] = None,
                       things_first: bool = True) -> Tuple[List[int], List[str], List[str]]:
    """COCO ``categories`` -> (category ids in label order, thing names, stuff names).

    Args:
        categories: the annotation file's category entries (``id``, ``name``, optional ``isthing``,
            absent meaning a thing as in instance files), in file order.
        classes: class names to keep (others are left out); all categories when None.
        things_first: thing categories before stuff ones (each group in file order), as mmdet's
            panoptic models expect; otherwise file order.
    """
    if classes is not None:
        known = {c['name'] for c in categories}
        missing = [name for name in classes if name not in known]
        if missing:
            raise M2FConfigError(f'classes {missing[:5]} of the config are not categories of the annotation file '
                                 f'(it has {sorted(known)[:5]}...); fix metainfo.classes or leave it out to take the '
                                 f"file's classes")
        categories = [c for c in categories if c['name'] in set(classes)]
    things = [c for c in categories if c.get('isthing', 1)]
    stuff = [c for c in categories if not c.get('isthing', 1)]
    ordered = things + stuff if things_first else list(categories)
    return [c['id'] for c in ordered], [c['name'] for c in things], [c['name'] for c in stuff]


class _ClassesFromAnnFile:
    """Mixin: label order and ``metainfo`` classes from the annotation file (module docstring)."""

    METAINFO: dict = {}
    THINGS_FIRST = True

    def __init__(self, *args, metainfo: Optional[dict] = None, **kwargs) -> None:
        # the classes the config gives; a subclass's METAINFO is a fallback, not a filter of the file
        self._config_classes = tuple((metainfo or {}).get('classes') or ()) or None
        super().__init__(*args, metainfo=metainfo, **kwargs)

    def _index(self) -> None:
        """Load the annotation file into ``self.coco`` and fix label order and metainfo classes."""
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            self.coco = self.COCOAPI(local_path)
        cats = self.coco.load_cats(self.coco.get_cat_ids())
        given = self._config_classes
        self.cat_ids, things, stuff = ordered_categories(cats, given, self.THINGS_FIRST)
        names = {c['id']: c['name'] for c in cats}
        self._metainfo.update(classes=tuple(names[i] for i in self.cat_ids))
        if len(self._metainfo.get('palette') or ()) != len(self.cat_ids):
            self._metainfo.update(palette=distinct_palette(len(self.cat_ids)))
        if self.THINGS_FIRST:
            self._metainfo.update(thing_classes=tuple(things), stuff_classes=tuple(stuff))
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}
        self.cat_img_map = copy.deepcopy(self.coco.cat_img_map)  # a defaultdict: classes without images

    def load_data_list(self) -> List[dict]:
        """One data info per image of the annotation file (``parse_data_info``)."""
        self._index()
        data_list = []
        for img_id in self.coco.get_img_ids():
            img_info = dict(self.coco.load_imgs([img_id])[0], img_id=img_id)
            anns = self.coco.load_anns(self.coco.get_ann_ids(img_ids=[img_id]))
            data_list.append(self.parse_data_info(dict(raw_img_info=img_info, raw_ann_info=anns)))
        del self.coco
        return [info for info in data_list if info is not None]


@register_dataset
class M2FPanopticDataset(_ClassesFromAnnFile, M2FCocoPanopticDataset):
    """COCO-format panoptic data of any dataset (ADE20K panoptic): classes from the file, thing
    classes first, each PNG named by its annotation's ``file_name``, string image ids accepted.
    Otherwise :class:`M2FCocoPanopticDataset` (category, segment-id, size and path checks)."""

    STRING_IMAGE_IDS = True  # ADE20K's and Cityscapes' files name images by strings

    def _index(self) -> None:
        super()._index()
        self._png_names: Dict[object, str] = {ann['image_id']: ann['file_name']
                                              for ann in self.coco.dataset.get('annotations', [])}

    def png_name(self, img_info: dict) -> str:
        return self._png_names.get(img_info['img_id']) or super().png_name(img_info)


@register_dataset
class M2FCityscapesPanopticDataset(M2FPanopticDataset):
    """Cityscapes panoptic (cityscapesscripts' ``createPanopticImgs`` output): as
    :class:`M2FPanopticDataset`, with each image in its city's folder under ``data_prefix['img']``
    (``leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png``)."""

    def image_path(self, file_name: str) -> str:
        return osp.join(self.data_prefix['img'], file_name.split('_')[0], file_name)


@register_dataset
class M2FInstanceDataset(_ClassesFromAnnFile, CocoDataset):
    """COCO-format instance data of any dataset (ADE20K instance): mmdet's ``CocoDataset`` with the
    class names, in file order, taken from the annotation file when the config gives none."""

    THINGS_FIRST = False
