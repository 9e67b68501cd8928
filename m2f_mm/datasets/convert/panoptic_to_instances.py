"""COCO panoptic (JSON + PNGs) -> the COCO instances JSON of its thing segments (what ``CocoMetric`` reads).

For a dataset that comes with panoptic annotations only: every thing segment becomes one instance
annotation with its mask as RLE (crowd segments: ``iscrowd=1``, uncompressed RLE, as COCO writes
them), its box and area measured on the PNG; stuff segments and VOID are left out. Image entries
and thing categories are copied from the panoptic JSON, so image ids match and mask AP compares
the same pixels PQ does.
"""
import os.path as osp
from typing import Dict, List

import numpy as np
from PIL import Image

from ...structures.panoptic_format import rgb2id
from .layout import ConversionError, _dump, bbox_of, load_json, rle_of


def pan_ids(path: str) -> np.ndarray:
    """A COCO panoptic PNG -> segment ids int64 [H, W] (R + 256 G + 256^2 B)."""
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert('RGB'))
    except (OSError, ValueError) as err:
        raise ConversionError(f'cannot read panoptic PNG {path}: {err}') from None
    return rgb2id(rgb)


def instances_of(panoptic: dict, png_dir: str, where: str) -> dict:
    """The instances JSON (a dict) of a panoptic JSON ``panoptic`` whose PNGs are in ``png_dir``."""
    categories = {c['id']: c for c in panoptic.get('categories', [])}
    images = {i['id']: i for i in panoptic.get('images', [])}
    annotations: List[dict] = []
    for entry in panoptic.get('annotations', []):
        if entry['image_id'] not in images:
            raise ConversionError(f'{where}: annotation {entry.get("file_name")} names image id {entry["image_id"]}, '
                                  'which is not in "images"')
        things = [s for s in entry['segments_info'] if categories.get(s['category_id'], {}).get('isthing', 1)]
        unknown = [s['category_id'] for s in entry['segments_info'] if s['category_id'] not in categories]
        if unknown:
            raise ConversionError(f'{where}: image id {entry["image_id"]} has category_id {unknown[0]}, which is not '
                                  'in "categories"; fix the annotation file')
        if not things:
            continue
        ids = pan_ids(osp.join(png_dir, entry['file_name']))
        for segment in things:
            mask = ids == segment['id']
            if not mask.any():
                raise ConversionError(f'{where}: segment {segment["id"]} of image id {entry["image_id"]} is not in '
                                      f'{entry["file_name"]}; regenerate the PNG / JSON pair from the same source')
            crowd = bool(segment.get('iscrowd', 0))
            annotations.append(dict(id=len(annotations) + 1, image_id=entry['image_id'],
                                    category_id=segment['category_id'], iscrowd=int(crowd),
                                    area=int(mask.sum()), bbox=bbox_of(mask), segmentation=rle_of(mask, crowd)))
    thing_categories = [{k: v for k, v in c.items() if k != 'isthing'} for c in categories.values()
                        if c.get('isthing', 1)]
    return dict(images=list(images.values()), annotations=annotations, categories=thing_categories)


def convert(panoptic_json: str, png_dir: str, out: str) -> Dict[str, int]:
    """Write the instances JSON of ``panoptic_json`` to ``out``; returns counts (images, instances, crowd)."""
    panoptic = load_json(panoptic_json, 'panoptic annotation file')
    if not isinstance(panoptic, dict) or 'annotations' not in panoptic or 'categories' not in panoptic:
        raise ConversionError(f'{panoptic_json} is not a COCO panoptic file (it needs "images", "annotations" with '
                              '"segments_info" and "categories")')
    result = instances_of(panoptic, png_dir, panoptic_json)
    _dump(result, out)
    return dict(images=len(result['images']), instances=len(result['annotations']),
                crowd=sum(a['iscrowd'] for a in result['annotations']))
