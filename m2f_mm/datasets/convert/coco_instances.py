"""COCO instances JSON (polygons or RLE, iscrowd) + optional stuff label PNGs -> COCO panoptic.

Without panopticapi. How one image becomes a panoptic map:

1. Stuff (when label PNGs are given): each PNG value maps, through the class table, to a stuff
   class (one segment per class), to a thing class (those pixels stay VOID unless an instance
   covers them: a thing needs an instance) or to void.
2. Crowd annotations (``iscrowd=1``) are painted over stuff, in annotation order, each as one
   crowd segment of its class.
3. Non-crowd instances are painted over both, **largest first, so the smaller of two overlapping
   instances is on top** (a small object in front of a large one is the usual case); equal areas
   keep annotation order, the later on top. An instance left with no visible pixel is dropped and
   counted (``hidden``).

Output categories: the instance file's categories (things), then the table's stuff classes (ids
after the largest thing id, in table order). The instance file of the output holds the *visible*
masks, so PQ, mask AP and mIoU all score against the same pixels.

Shape legend: H x W one image.
"""
from __future__ import annotations

import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from .layout import (Category, ConversionError, SplitWriter, check_same_size, default_color, image_size,
                     load_json, parse_categories, read_index_png)

VOID_NAMES = (None, '', 'void', 'ignore')


def read_stuff_table(path: str, thing_names: Sequence[str], first_id: int) -> Tuple[Dict[int, Optional[str]],
                                                                                     List[Category]]:
    """The stuff class table -> ({PNG value: class name, None = void}, new stuff categories).

    Format (JSON): ``{"VALUE": NAME}`` for every value that occurs in the PNGs, NAME a stuff class
    name, a thing class name of the instance file, or null / "void" / "ignore"; NAME may also be
    ``{"name": NAME, "color": [R, G, B]}``. Example: ``{"0": null, "1": "sky", "2": "coin"}``.
    """
    table = load_json(path, 'stuff class table')
    if not isinstance(table, dict) or not table:
        raise ConversionError(f'stuff class table {path} must be a JSON object {{"PNG value": "class name" or null}}')
    values: Dict[int, Optional[str]] = {}
    stuff: Dict[str, Tuple[int, int, int]] = {}
    for key, entry in table.items():
        try:
            value = int(key)
        except ValueError:
            raise ConversionError(f'stuff class table {path}: key {key!r} is not an integer PNG value') from None
        color = None
        if isinstance(entry, dict):
            entry, color = entry.get('name'), entry.get('color')
        if entry in VOID_NAMES:
            values[value] = None
            continue
        if not isinstance(entry, str):
            raise ConversionError(f'stuff class table {path}: value {key} maps to {entry!r}; give a class name, '
                                  'null, or {"name": ..., "color": [R, G, B]}')
        values[value] = entry
        if entry not in thing_names and entry not in stuff:
            stuff[entry] = tuple(color) if color else default_color(len(thing_names) + len(stuff))
    categories = [Category(first_id + k, name, False, tuple(int(c) for c in color))
                  for k, (name, color) in enumerate(stuff.items())]
    return values, categories


def decode_segmentation(ann: dict, height: int, width: int, where: str) -> np.ndarray:
    """A COCO annotation's ``segmentation`` (polygons, uncompressed or compressed RLE) -> bool [H, W]."""
    segm = ann.get('segmentation')
    if isinstance(segm, list):
        if not segm:
            raise ConversionError(f'{where}: empty "segmentation"; give polygons or an RLE, or remove the annotation')
        for poly in segm:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                raise ConversionError(f'{where}: a polygon must be a flat list [x1, y1, x2, y2, ...] of at least '
                                      f'3 points, got {str(poly)[:60]}')
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm, dict) and 'counts' in segm and 'size' in segm:
        if [int(s) for s in segm['size']] != [height, width]:
            raise ConversionError(f'{where}: RLE size {segm["size"]} differs from the image ({height}x{width}, HxW)')
        rle = mask_utils.frPyObjects(segm, height, width) if isinstance(segm['counts'], list) else dict(
            size=segm['size'], counts=segm['counts'].encode('ascii') if isinstance(segm['counts'], str)
            else segm['counts'])
    else:
        raise ConversionError(f'{where}: "segmentation" must be polygons or an RLE {{"size", "counts"}}, '
                              f'got {str(segm)[:60]}')
    return mask_utils.decode(rle).astype(bool)


def panoptic_from_instances(masks: Sequence[np.ndarray], category_ids: Sequence[int], crowd: Sequence[bool],
                            stuff_map: Optional[np.ndarray] = None) -> Tuple[np.ndarray, List[dict], int]:
    """Paint instances over stuff (module docstring) -> (pan int64 [H, W], segments, hidden count).

    Args:
        masks: bool [H, W] per annotation, in annotation order.
        category_ids: category id per annotation.
        crowd: iscrowd per annotation.
        stuff_map: int [H, W] stuff category id per pixel, 0 = void (None: all void).
    """
    shape = masks[0].shape if len(masks) else stuff_map.shape
    pan = np.zeros(shape, np.int64)
    segments: List[dict] = []
    if stuff_map is not None:
        for cat_id in np.unique(stuff_map):
            if cat_id != 0:
                segments.append(dict(id=len(segments) + 1, category_id=int(cat_id), iscrowd=0))
                pan[stuff_map == cat_id] = segments[-1]['id']
    areas = [int(m.sum()) for m in masks]
    crowd_order = [k for k in range(len(masks)) if crowd[k]]
    # stable sort on -area: largest first, equal areas in annotation order (later painted on top)
    thing_order = sorted((k for k in range(len(masks)) if not crowd[k]), key=lambda k: -areas[k])
    painted = []
    for k in crowd_order + thing_order:
        seg_id = len(segments) + len(painted) + 1
        pan[masks[k]] = seg_id
        painted.append(dict(id=seg_id, category_id=int(category_ids[k]), iscrowd=int(bool(crowd[k]))))
    visible = set(np.unique(pan).tolist())
    things = [s for s in painted if s['id'] in visible]
    return pan, segments + things, len(painted) - len(things)


def convert_split(instances_json: str, image_dir: str, out_dir: str, split: str, *,
                  stuff_dir: Optional[str] = None, stuff_table: Optional[str] = None, images: str = 'copy') -> dict:
    """Convert one split (module docstring); returns the writer's statistics plus ``hidden``."""
    data = load_json(instances_json, 'instances file')
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise ConversionError(f'{instances_json} is not a COCO instances file (no "images" list)')
    things = [Category(c.id, c.name, True, c.color) for c in parse_categories(data.get('categories'),
                                                                                instances_json)]
    if (stuff_dir is None) != (stuff_table is None):
        raise ConversionError('give both --stuff-pngs and --stuff-classes, or neither')
    value_names: Dict[int, Optional[str]] = {}
    stuff: List[Category] = []
    if stuff_table is not None:
        value_names, stuff = read_stuff_table(stuff_table, [c.name for c in things], max(c.id for c in things) + 1)
    categories = things + stuff
    id_of = {c.name: c.id for c in categories}
    thing_ids = {c.id for c in things}
    anns_of = defaultdict(list)
    image_ids = {img.get('id') for img in data['images']}
    for ann in data.get('annotations', []):
        where = f'{instances_json}: annotation {ann.get("id")} (image {ann.get("image_id")})'
        if ann.get('image_id') not in image_ids:
            raise ConversionError(f'{where}: no image with this id in "images"; fix image_id or add the image')
        if ann.get('category_id') not in thing_ids:
            raise ConversionError(f'{where}: category_id {ann.get("category_id")} is not in "categories" '
                                  f'(ids {sorted(thing_ids)[:10]}); add the category or fix the annotation')
        anns_of[ann['image_id']].append(ann)
    writer = SplitWriter(out_dir, split, categories, images=images)
    hidden = 0
    for img in data['images']:
        file_name, image_id = img['file_name'], img['id']
        src = osp.join(image_dir, file_name)
        height, width = image_size(src)
        if (img.get('height'), img.get('width')) != (height, width):
            raise ConversionError(f'{instances_json}: image {file_name} is {height}x{width} (HxW) on disk but '
                                  f'{img.get("height")}x{img.get("width")} in "images"; fix the entry or the file')
        stuff_map = None
        if stuff_dir is not None:
            stuff_map = _stuff_map(osp.join(stuff_dir, osp.splitext(file_name)[0] + '.png'), value_names, id_of,
                                   thing_ids, src, (height, width), stuff_table)
        anns = anns_of[image_id]
        masks = [decode_segmentation(a, height, width, f'{instances_json}: annotation {a.get("id")}') for a in anns]
        if not anns and stuff_map is None:
            stuff_map = np.zeros((height, width), np.int64)
        pan, segments, n_hidden = panoptic_from_instances(masks, [a['category_id'] for a in anns],
                                                          [bool(a.get('iscrowd', 0)) for a in anns], stuff_map)
        hidden += n_hidden
        writer.add(file_name, src, image_id, pan, segments)
    result = writer.close()
    result['stats']['hidden'] = hidden
    return result


def _stuff_map(path: str, value_names: Dict[int, Optional[str]], id_of: Dict[str, int], thing_ids: set,
               image_path: str, image_hw: Tuple[int, int], table_path: str) -> np.ndarray:
    """A stuff label PNG -> int64 [H, W] stuff category id per pixel, 0 = void (thing classes: void)."""
    if not osp.isfile(path):
        raise ConversionError(f'no stuff label PNG {path} for image {image_path}; every image needs one')
    values = read_index_png(path)
    check_same_size(path, values.shape, image_path, image_hw)
    uniq, inverse = np.unique(values, return_inverse=True)
    unknown = [int(v) for v in uniq if int(v) not in value_names]
    if unknown:
        raise ConversionError(f'{path} has values {unknown[:10]} that the stuff class table {table_path} does not '
                              'list; add them (a class name, or null for void)')
    lut = np.array([0 if value_names[int(v)] is None or id_of[value_names[int(v)]] in thing_ids
                    else id_of[value_names[int(v)]] for v in uniq], np.int64)
    return lut[inverse.reshape(values.shape)]
