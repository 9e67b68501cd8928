"""Instance-id PNGs (one per image) + a class table, or + class PNGs -> COCO panoptic.

Input, per image ``STEM`` (the image file name without its extension):

* ``PNGS/STEM.png``: each pixel an instance id, 0 = background / void (grey, palette or 16-bit PNG;
  an RGB PNG is read as id = R + 256 G + 256^2 B);
* the class of every id, from one of:

  - the class table (JSON)::

        {"categories": [{"id": 1, "name": "coin", "isthing": 1},
                        {"id": 2, "name": "background", "isthing": 0}],
         "instances": {"*": {"1": 2},                   # id 1 is background in every image
                       "img_0001": {"2": 1, "3": 1}},   # this image's ids 2 and 3 are coins
         "crowd": {"img_0001": [3]}}                     # optional: ids that are crowd regions

    ``instances[STEM]`` maps the image's ids to category ids, ``instances["*"]`` the ids shared
    by every image (an image's own entry wins);
  - or a class PNG per image (``CLASS_PNGS/STEM.png``, each pixel a category id, 0 = void): an
    instance's class is the class under it (an instance over two classes is refused), pixels of a
    thing class with instance id 0 are VOID (a thing needs an instance), instance ids on stuff
    pixels are ignored.

Stuff: all pixels of one stuff class form one segment (COCO panoptic has one segment per stuff
class and image). Things: one segment per instance id.

Shape legend: H x W one image.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .layout import (ConversionError, SplitWriter, check_same_size, find_file, image_size, list_images, load_json,
                     parse_categories, read_index_png, things_first)


def panoptic_from_maps(category_map: np.ndarray, instance_map: Optional[np.ndarray], thing_ids: Sequence[int],
                       no_instance: Optional[int] = 0, where: str = '') -> Tuple[np.ndarray, List[dict]]:
    """Per-pixel category and instance -> (pan int64 [H, W], segments).

    Args:
        category_map: int [H, W] category id per pixel, < 0 = void.
        instance_map: int [H, W] instance value per pixel (None: no thing segments).
        thing_ids: the thing category ids.
        no_instance: the instance value meaning "no instance" (its thing pixels are VOID); None when
            every value is an instance.
        where: the file named in errors.

    Segment ids: stuff classes first (ascending category id), then instances (ascending value).
    Raises ConversionError when one instance value covers pixels of two thing categories.
    """
    category_map = np.asarray(category_map, np.int64)
    is_thing = np.isin(category_map, np.asarray(list(thing_ids), np.int64))
    stuff_px = (category_map >= 0) & ~is_thing
    pan = np.zeros(category_map.shape, np.int64)
    segments: List[dict] = []
    stuff_ids, stuff_inverse = np.unique(category_map[stuff_px], return_inverse=True)
    pan[stuff_px] = stuff_inverse + 1
    segments += [dict(id=k + 1, category_id=int(c), iscrowd=0) for k, c in enumerate(stuff_ids)]
    if instance_map is None:
        return pan, segments
    instance_map = np.asarray(instance_map, np.int64)
    inst_px = is_thing if no_instance is None else is_thing & (instance_map != no_instance)
    values, inverse = np.unique(instance_map[inst_px], return_inverse=True)
    cats = category_map[inst_px]
    pairs = np.unique(inverse * (int(cats.max(initial=0)) + 1) + cats)
    owner = pairs // (int(cats.max(initial=0)) + 1)
    if len(owner) != len(values):
        k = int(owner[np.flatnonzero(np.diff(owner) == 0)[0]])
        classes = sorted({int(c) for c in cats[inverse == k]})
        raise ConversionError(f'{where}: instance id {int(values[k])} covers pixels of classes {classes}; '
                              'one instance has one class: split it or fix the class map')
    pan[inst_px] = inverse + len(segments) + 1
    first = len(segments) + 1
    class_of = np.zeros(len(values), np.int64)
    class_of[inverse] = cats
    segments += [dict(id=first + k, category_id=int(class_of[k]), iscrowd=0) for k in range(len(values))]
    return pan, segments


class ClassTable:
    """The JSON class table of the module docstring: categories, per-image id classes, crowd ids."""

    def __init__(self, path: str) -> None:
        data = load_json(path, 'class table')
        if not isinstance(data, dict):
            raise ConversionError(f'class table {path} must be a JSON object with "categories" (and "instances")')
        self.path = path
        self.categories = things_first(parse_categories(data.get('categories'), path))
        self.category_ids = {c.id for c in self.categories}
        self.instances: Dict[str, Dict[int, int]] = {}
        for stem, table in (data.get('instances') or {}).items():
            if not isinstance(table, dict):
                raise ConversionError(f'class table {path}: instances[{stem!r}] must map ids to category ids')
            self.instances[stem] = {}
            for key, cat_id in table.items():
                if cat_id not in self.category_ids:
                    raise ConversionError(f'class table {path}: instances[{stem!r}][{key!r}] = {cat_id!r} is not a '
                                          f'category id (known: {sorted(self.category_ids)[:10]})')
                self.instances[stem][_int_key(key, path)] = cat_id
        self.crowd = {stem: {int(v) for v in ids} for stem, ids in (data.get('crowd') or {}).items()}

    def classes_of(self, stem: str) -> Dict[int, int]:
        """{instance id: category id} of one image (the shared ``"*"`` entry, then the image's own)."""
        return {**self.instances.get('*', {}), **self.instances.get(stem, {})}


def _int_key(key: str, path: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise ConversionError(f'class table {path}: instance id {key!r} is not an integer') from None


def image_panoptic(ids: np.ndarray, stem: str, table: ClassTable, class_map: Optional[np.ndarray] = None,
                   where: str = '') -> Tuple[np.ndarray, List[dict]]:
    """One image's instance ids (+ class PNG values) -> (pan, segments) (module docstring)."""
    thing_ids = [c.id for c in table.categories if c.isthing]
    if class_map is not None:
        unknown = sorted(set(np.unique(class_map).tolist()) - table.category_ids - {0})
        if unknown:
            raise ConversionError(f'{where}: class values {unknown[:10]} are not category ids of {table.path} '
                                  f'({sorted(table.category_ids)[:10]}); add them or fix the PNG')
        pan, segments = panoptic_from_maps(np.where(class_map == 0, -1, class_map), ids, thing_ids, 0, where)
    else:
        classes = table.classes_of(stem)
        present = np.unique(ids)
        missing = [int(v) for v in present if v != 0 and int(v) not in classes]
        if missing:
            raise ConversionError(f'{where}: instance ids {missing[:10]} have no class in {table.path}; add them to '
                                  f'"instances": {{"{stem}": {{"ID": CATEGORY_ID}}}} (or "*" for every image)')
        unused = sorted(set(table.instances.get(stem, {})) - set(present.tolist()))
        if unused:
            raise ConversionError(f'{table.path}: instances[{stem!r}] lists ids {unused[:10]} that {where} does '
                                  'not contain; is it the right PNG?')
        lut_keys = present[present != 0]
        category = np.full(ids.shape, -1, np.int64)
        pos = np.searchsorted(lut_keys, ids).clip(max=max(len(lut_keys) - 1, 0))
        if len(lut_keys):
            hit = (ids != 0) & (lut_keys[pos] == ids)
            category[hit] = np.array([classes[int(v)] for v in lut_keys], np.int64)[pos[hit]]
        pan, segments = panoptic_from_maps(category, ids, thing_ids, 0, where)
    crowd_values = table.crowd.get(stem, set())
    for seg in segments:
        if crowd_values and seg['category_id'] in thing_ids and int(ids[pan == seg['id']][0]) in crowd_values:
            seg['iscrowd'] = 1
    return pan, segments


def convert_split(png_dir: str, image_dir: str, table_path: str, out_dir: str, split: str, *,
                  class_png_dir: Optional[str] = None, images: str = 'copy') -> dict:
    """Convert every image under ``image_dir`` with its instance PNG (module docstring)."""
    table = ClassTable(table_path)
    writer = SplitWriter(out_dir, split, table.categories, images=images)
    for file_name in list_images(image_dir):
        stem = osp.splitext(file_name)[0]
        src = osp.join(image_dir, file_name)
        hw = image_size(src)
        png = find_file(png_dir, stem, ('.png',), 'instance-id PNG')
        ids = read_index_png(png, allow_rgb_ids=True)
        check_same_size(png, ids.shape, src, hw)
        class_map = None
        if class_png_dir is not None:
            class_png = find_file(class_png_dir, stem, ('.png',), 'class PNG')
            class_map = read_index_png(class_png)
            check_same_size(class_png, class_map.shape, src, hw)
        pan, segments = image_panoptic(ids, stem, table, class_map, where=png)
        writer.add(file_name, src, stem, pan, segments)
    return writer.close()
