"""Mapillary Vistas (v1.2, or v2.0) release -> the layout the Mapillary configs read.

The release, under ``ROOT``::

    config_v1.2.json                          "labels": [{"name", "readable", "color", "instances",
                                              "evaluate"}, ...] (v1.2: 66, the last "Unlabeled")
    training/images/*.jpg
    training/v1.2/labels/*.png                palette PNG, value = index into "labels"
    training/v1.2/instances/*.png             uint16, value = label index * 256 + instance index
    training/v1.2/panoptic/panoptic_2018.json + *.png   COCO panoptic, category id = label index + 1
    validation/...                            the same

(the v1.1 layout without the ``v1.2/`` level is found too). Written under ``OUT`` as every converter
does (package docstring), splits ``train`` (training) and ``val`` (validation):

* categories: the evaluated labels (v1.2: 65) in the release's order, names = ``readable`` (mmseg's
  ``MapillaryDataset_v1`` names), id = label index + 1 (the panoptic file's), thing = ``instances``;
  the panoptic model's loader puts things first itself, and the semantic label PNGs keep the
  release's order, which the original's semantic models and mmseg's dataset use;
* semantic PNGs: the label PNG, the evaluated labels renumbered 0..K-1 in order (v1.2: identity),
  the others (v1.2: 65 "Unlabeled") 255;
* panoptic: the release's panoptic PNGs and JSON (``source='panoptic'``, default) with segments of
  non-evaluated labels made VOID, or built from the instance PNGs (``source='instances'``: every
  value of a thing label is one instance, each other label one stuff segment);
* instances: the thing segments as COCO RLE (for mask AP; the original evaluates PQ and mIoU).

Shape legend: H x W one image.
"""
from __future__ import annotations

import os.path as osp
from multiprocessing import Pool
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...structures.panoptic_format import rgb2id
from .instance_pngs import panoptic_from_maps
from .layout import (IGNORE_INDEX, Category, ConversionError, SplitSpec, SplitWriter, check_same_size, image_size,
                     list_images, load_json, read_index_png)

SPLITS = {'train': 'training', 'val': 'validation'}
SOURCES = ('panoptic', 'instances')


def read_labels(root: str, version: str = 'v1.2') -> List[dict]:
    """``config_{version}.json``'s label list, each checked for name, readable, color, instances, evaluate."""
    path = osp.join(root, f'config_{version}.json')
    data = load_json(path, 'Mapillary config')
    labels = data.get('labels') if isinstance(data, dict) else None
    if not isinstance(labels, list) or not labels:
        raise ConversionError(f'{path} has no "labels" list; is ROOT the Mapillary Vistas release folder?')
    for k, label in enumerate(labels):
        missing = [key for key in ('readable', 'color', 'instances', 'evaluate') if key not in label]
        if missing:
            raise ConversionError(f'{path}: label {k} ({label.get("name")}) lacks {missing}; a Mapillary config '
                                  'label has name, readable, color, instances and evaluate')
    return labels


def categories_of(labels: List[dict]) -> Tuple[List[Category], np.ndarray]:
    """(evaluated labels as categories, label index -> semantic value lookup int64 [L], 255 = ignored)."""
    categories = [Category(k + 1, str(lab['readable']), bool(lab['instances']), tuple(int(c) for c in lab['color']))
                  for k, lab in enumerate(labels) if lab['evaluate']]
    semantic_of = np.full(len(labels), IGNORE_INDEX, np.int64)
    semantic_of[[c.id - 1 for c in categories]] = np.arange(len(categories))
    return categories, semantic_of


def split_folders(root: str, split: str, version: str) -> Dict[str, str]:
    """The release's image, labels, instances and panoptic folders of ``split`` (train / val)."""
    base = osp.join(root, SPLITS[split])
    versioned = osp.join(base, version)
    ann = versioned if osp.isdir(versioned) else base
    folders = dict(images=osp.join(base, 'images'), labels=osp.join(ann, 'labels'),
                   instances=osp.join(ann, 'instances'), panoptic=osp.join(ann, 'panoptic'))
    if not osp.isdir(folders['images']):
        raise ConversionError(f'{folders["images"]} does not exist; ROOT must hold {SPLITS[split]}/images/')
    return folders


def semantic_map(labels_png: str, semantic_of: np.ndarray, image_path: str, hw: Tuple[int, int]) -> np.ndarray:
    """A release label PNG -> uint8 [H, W] semantic values (module docstring)."""
    values = read_index_png(labels_png)
    check_same_size(labels_png, values.shape, image_path, hw)
    if values.max(initial=0) >= len(semantic_of):
        raise ConversionError(f'{labels_png} has label {int(values.max())} but the config lists '
                              f'{len(semantic_of)} labels; is it the matching version?')
    return semantic_of[values].astype(np.uint8)


def panoptic_from_release(png: str, segments_info: List[dict], categories: Dict[int, Category], image_path: str,
                          hw: Tuple[int, int]) -> Tuple[np.ndarray, List[dict]]:
    """A release panoptic PNG + its segments -> (pan, segments) with non-evaluated segments VOID."""
    try:
        from PIL import Image
        rgb = np.asarray(Image.open(png).convert('RGB'))
    except OSError as err:
        raise ConversionError(f'cannot read panoptic PNG {png}: {err}') from None
    pan = rgb2id(rgb)
    check_same_size(png, pan.shape, image_path, hw)
    segments = []
    for seg in segments_info:
        if seg['category_id'] in categories:
            segments.append(dict(id=int(seg['id']), category_id=int(seg['category_id']),
                                 iscrowd=int(seg.get('iscrowd', 0))))
        else:
            pan[pan == seg['id']] = 0
    listed = {s['id'] for s in segments_info}
    extra = sorted(set(np.unique(pan).tolist()) - listed - {0})
    if extra:
        raise ConversionError(f'{png} has segment ids {extra[:10]} that panoptic_2018.json does not list for it')
    present = set(np.unique(pan).tolist())
    return pan, [s for s in segments if s['id'] in present]


def _encode_one(task: tuple) -> dict:
    """One image (run in a worker): read the release files, return ``SplitSpec.encode``'s result."""
    spec, source, folders, file_name, image_id, pan_info, semantic_of = task
    src = osp.join(folders['images'], file_name)
    hw = image_size(src)
    stem = osp.splitext(file_name)[0]
    categories = {c.id: c for c in spec.categories}
    sem = semantic_map(osp.join(folders['labels'], stem + '.png'), semantic_of, src, hw)
    if source == 'panoptic':
        pan, segments = panoptic_from_release(osp.join(folders['panoptic'], pan_info['file_name']),
                                              pan_info['segments_info'], categories, src, hw)
    else:
        png = osp.join(folders['instances'], stem + '.png')
        values = read_index_png(png)
        check_same_size(png, values.shape, src, hw)
        label = values // 256
        if label.max(initial=0) >= len(semantic_of):
            raise ConversionError(f'{png} has label {int(label.max())} (value // 256) beyond the config\'s labels')
        category = np.where(semantic_of[label] == IGNORE_INDEX, -1, label + 1)
        pan, segments = panoptic_from_maps(category, values, [c.id for c in spec.categories if c.isthing],
                                           no_instance=None, where=png)
    return spec.encode(file_name, src, image_id, pan, segments, sem=sem)


def convert_split(root: str, out_dir: str, split: str, *, version: str = 'v1.2', source: str = 'panoptic',
                  images: str = 'link', workers: int = 0, limit: Optional[int] = None) -> dict:
    """Convert the release's ``split`` (``train`` / ``val``) into ``out_dir`` (module docstring).

    ``workers`` > 0 encodes images in that many processes; ``limit`` converts the first images only.
    """
    if split not in SPLITS or source not in SOURCES:
        raise ConversionError(f'split must be one of {sorted(SPLITS)} and source one of {SOURCES}, '
                              f'got {split!r}, {source!r}')
    labels = read_labels(root, version)
    categories, semantic_of = categories_of(labels)
    folders = split_folders(root, split, version)
    spec = SplitSpec(out_dir, split, tuple(categories), images)
    if source == 'panoptic':
        entries = _release_panoptic(folders['panoptic'], labels)
    else:
        entries = [(name, osp.splitext(name)[0], None) for name in list_images(folders['images'], ('.jpg',))]
    tasks = [(spec, source, folders, name, image_id, info, semantic_of) for name, image_id, info in entries[:limit]]
    writer = SplitWriter(out_dir, split, categories, images)
    if workers > 0:
        with Pool(workers) as pool:
            for encoded in pool.imap(_encode_one, tasks, chunksize=4):
                writer.collect(encoded)
    else:
        for task in tasks:
            writer.collect(_encode_one(task))
    return writer.close(dataset=f'Mapillary Vistas {version}')


def _release_panoptic(folder: str, labels: List[dict]) -> List[tuple]:
    """(image file name, image id, panoptic annotation) of every image of ``panoptic_2018.json``,
    whose categories are checked against the config's labels."""
    path = osp.join(folder, 'panoptic_2018.json')
    data = load_json(path, 'Mapillary panoptic file')
    for cat in data.get('categories', []):
        k = cat.get('id', 0) - 1
        names = (labels[k].get('readable'), labels[k].get('name')) if 0 <= k < len(labels) else ()
        if cat.get('name') not in names and cat.get('supercategory') not in names:
            raise ConversionError(f'{path}: category id {cat.get("id")} is {cat.get("name")!r} but label {k} of the '
                                  f'config is {names}; the panoptic file and config_*.json must be the same version')
    by_image = {ann['image_id']: ann for ann in data.get('annotations', [])}
    out = []
    for img in data.get('images', []):
        if img['id'] not in by_image:
            raise ConversionError(f'{path}: image {img["file_name"]} has no annotation')
        out.append((img['file_name'], img['id'], by_image[img['id']]))
    if not out:
        raise ConversionError(f'{path} lists no images')
    return out
