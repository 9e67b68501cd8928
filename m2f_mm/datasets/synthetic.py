"""The bundled synthetic benchmark written in COCO / mmseg on-disk formats.

Scenes come from :mod:`m2f_mm.datasets.synthetic_scene` (what is drawn, and why: docs/demo.md).
Layout written by :func:`generate_dataset` (``S`` = ``train`` / ``val``)::

    OUT/S/{image_id:012d}.jpg                    RGB image
    OUT/annotations/panoptic_S.json + panoptic_S/*.png   COCO panoptic (id = R + 256 G + 256^2 B)
    OUT/annotations/instances_S.json             COCO instances, things only, RLE masks
    OUT/annotations/semantic_S/*.png             mmseg label PNG, index into CLASSES, 255 = VOID
    OUT/meta.json                                classes, palette, ids, arguments, stats, readme

Semantic class index = position in ``CLASSES`` = things first, then stuff (the order mmdet's
``CocoPanopticDataset`` and ``LoadPanopticAnnotations`` use); crowd pixels keep their class, as
in mmdet. Category ids are non-contiguous on purpose. Image ``i`` of a split is drawn from
``numpy.random.default_rng([seed, split_stream, i])``, so train and val never share a stream and
an image does not depend on how many others are generated.

Shape legend: H x W image height x width.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ..errors import M2FConfigError
from ..structures.panoptic_format import id2rgb
from .synthetic_scene import (CATEGORY_IDS, CLASS_INDEX, CLASSES, ID_STRIDE, MIN_AREA,  # noqa: F401
                              PALETTE, SPLIT_STREAMS, STUFF_CLASSES, STUFF_IDS, THING_CLASSES, THING_IDS,
                              Scene, generate_scene, image_rng, rasterize_shape)

IGNORE_INDEX = 255
SPLIT_ID_OFFSET = {'train': 0, 'val': 1_000_000}
GENERATOR = 'm2f_mm.datasets.synthetic'
VERSION = 2  # 2: 192 px default, more / smaller things, clutter, illumination (docs/demo.md)
DEFAULT_SIZE = (192, 192)
DEFAULT_NUM_TRAIN, DEFAULT_NUM_VAL = 1000, 100
MIN_SIDE, MAX_SIDE = 32, 2048  # valid image side lengths
MAX_IMAGES = 1_000_000
MAX_SEED = 2**32 - 1


def validate_args(num_train: int, num_val: int, size: Sequence[int], seed: int) -> None:
    """Raise ``ValueError`` naming the argument and its valid range if any is impossible."""
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 1 <= value <= MAX_IMAGES:
            raise M2FConfigError(f'{name} must be an integer in [1, {MAX_IMAGES}], got {value!r}')
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and MIN_SIDE <= s <= MAX_SIDE
                                 for s in size):
        raise M2FConfigError(f'size must be (height, width), each an integer in [{MIN_SIDE}, '
                             f'{MAX_SIDE}] (smaller cannot hold the stuff regions and the '
                             f'smallest shapes), got {tuple(size)!r}')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed <= MAX_SEED:
        raise M2FConfigError(f'seed must be an integer in [0, {MAX_SEED}], got {seed!r}')


def segments_info(pan_ids: np.ndarray, segments: list) -> list:
    """COCO panoptic ``segments_info``: each segment with ``area`` and ``bbox`` [x, y, w, h]."""
    out = []
    for seg in segments:
        ys, xs = np.nonzero(pan_ids == seg['id'])
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]
        out.append(dict(seg, bbox=bbox, area=int(xs.size)))
    return out


def panoptic_to_semantic(pan_ids: np.ndarray, segments: list) -> np.ndarray:
    """uint8[H, W] class index (position in CLASSES) of every pixel, 255 for VOID."""
    sem = np.full(pan_ids.shape, IGNORE_INDEX, np.uint8)
    for seg in segments:
        sem[pan_ids == seg['id']] = CLASS_INDEX[seg['category_id']]
    return sem


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE (column-major run lengths, zeros first) of bool[H, W] ``mask``."""
    flat = np.asarray(mask, np.uint8).ravel(order='F')
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return dict(size=list(mask.shape), counts=([0] + counts) if flat[0] else counts)


def instance_annotations(pan_ids: np.ndarray, seg_infos: list, image_id: int,
                         first_ann_id: int) -> list:
    """COCO instance annotations of the thing segments (crowd: uncompressed RLE, else RLE)."""
    anns = []
    for seg in seg_infos:
        if seg['category_id'] not in THING_IDS:
            continue
        mask = pan_ids == seg['id']
        if seg['iscrowd']:
            segm = uncompressed_rle(mask)
        else:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            segm = dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))
        anns.append(dict(id=first_ann_id + len(anns), image_id=image_id,
                         category_id=seg['category_id'], iscrowd=seg['iscrowd'],
                         area=float(seg['area']), bbox=[float(v) for v in seg['bbox']],
                         segmentation=segm))
    return anns


def categories(things_only: bool = False) -> list:
    """COCO ``categories`` sorted by id (things first); panoptic ones carry ``isthing``."""
    cats = []
    for i, (cat_id, name) in enumerate(zip(CATEGORY_IDS, CLASSES)):
        isthing = int(i < len(THING_CLASSES))
        if things_only and not isthing:
            continue
        cat = dict(id=cat_id, name=name, supercategory='shape' if isthing else 'background')
        cats.append(cat if things_only else dict(cat, isthing=isthing, color=list(PALETTE[i])))
    return cats


def _dump(obj: dict, path: str) -> None:
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))


def write_split(out_dir: str, split: str, num_images: int, size: Sequence[int], seed: int,
                progress: Optional[Callable[[], None]] = None) -> dict:
    """Generate and write ``num_images`` scenes of ``split``; return its statistics."""
    h, w = size
    ann_dir = os.path.join(out_dir, 'annotations')
    dirs = [os.path.join(out_dir, split), os.path.join(ann_dir, f'panoptic_{split}'),
            os.path.join(ann_dir, f'semantic_{split}')]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    info = dict(description=f'm2f_mm synthetic shapes ({split})', version=str(VERSION))
    images, pan_anns, inst_anns = [], [], []
    class_counts = {name: 0 for name in CLASSES}
    num_crowd = num_void = 0
    for index in range(num_images):
        scene = generate_scene(image_rng(seed, split, index), h, w)
        image_id = SPLIT_ID_OFFSET[split] + index + 1
        stem = f'{image_id:012d}'
        Image.fromarray(scene.image).save(os.path.join(dirs[0], stem + '.jpg'), quality=95,
                                          subsampling=0)
        Image.fromarray(id2rgb(scene.pan_ids)).save(os.path.join(dirs[1], stem + '.png'))
        Image.fromarray(panoptic_to_semantic(scene.pan_ids, scene.segments)).save(
            os.path.join(dirs[2], stem + '.png'))
        seg_infos = segments_info(scene.pan_ids, scene.segments)
        images.append(dict(id=image_id, file_name=stem + '.jpg', height=h, width=w))
        pan_anns.append(dict(image_id=image_id, file_name=stem + '.png', segments_info=seg_infos))
        inst_anns += instance_annotations(scene.pan_ids, seg_infos, image_id, len(inst_anns) + 1)
        for seg in seg_infos:
            class_counts[CLASSES[CLASS_INDEX[seg['category_id']]]] += 1
            num_crowd += seg['iscrowd']
        num_void += int((scene.pan_ids == 0).sum())
        if progress is not None:
            progress()
    _dump(dict(info=info, licenses=[], images=images, annotations=pan_anns,
               categories=categories()), os.path.join(ann_dir, f'panoptic_{split}.json'))
    _dump(dict(info=info, licenses=[], images=images, annotations=inst_anns,
               categories=categories(things_only=True)),
          os.path.join(ann_dir, f'instances_{split}.json'))
    num_things = sum(1 for a in inst_anns if not a['iscrowd'])
    return dict(images=num_images, thing_instances=num_things, crowd_segments=num_crowd,
                instances_per_image=round(num_things / num_images, 3),
                void_fraction=round(num_void / (num_images * h * w), 5),
                segments_per_class=class_counts)


def _prepare_out_dir(out_dir: str) -> None:
    """Create ``out_dir``, or clear a previous synthetic set there; refuse any other content."""
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        meta_path = os.path.join(out_dir, 'meta.json')
        try:
            with open(meta_path) as f:
                ours = json.load(f).get('generator') == GENERATOR
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise M2FConfigError(f'out must be a new or empty directory or a previous synthetic set; '
                                 f'{out_dir!r} holds other files')
        for name in ('train', 'val', 'annotations', 'meta.json'):
            path = os.path.join(out_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    os.makedirs(out_dir, exist_ok=True)


def generate_dataset(out_dir: str, num_train: int = DEFAULT_NUM_TRAIN, num_val: int = DEFAULT_NUM_VAL,
                     size: Sequence[int] = DEFAULT_SIZE, seed: int = 0,
                     progress: Optional[Callable[[], None]] = None) -> dict:
    """Write the whole synthetic set (train + val + meta.json) under ``out_dir``.

    ``progress`` is called once per written image. Returns ``meta.json``'s content.
    """
    validate_args(num_train, num_val, size, seed)
    _prepare_out_dir(out_dir)
    size = [int(s) for s in size]
    stats = {split: write_split(out_dir, split, n, size, seed, progress)
             for split, n in (('train', num_train), ('val', num_val))}
    # the semantic label PNGs' classes (label k = classes[k]), read by the semantic configs
    _dump(dict(classes=list(CLASSES), palette=[list(c) for c in PALETTE]),
          os.path.join(out_dir, 'annotations', 'classes.json'))
    meta = dict(
        generator=GENERATOR, version=VERSION, classes=list(CLASSES),
        thing_classes=list(THING_CLASSES), stuff_classes=list(STUFF_CLASSES),
        palette=[list(c) for c in PALETTE], category_ids=list(CATEGORY_IDS),
        class_index_of_category_id={str(k): v for k, v in CLASS_INDEX.items()},
        ignore_index=IGNORE_INDEX,
        args=dict(num_train=num_train, num_val=num_val, size=size, seed=seed), stats=stats,
        readme=dict(
            images='S/{image_id:012d}.jpg, S in train/val; val image ids start at 1000001',
            panoptic='annotations/panoptic_S.json + panoptic_S/*.png: id = R + 256*G + 256^2*B, '
                     '0 = VOID; segment id = category_id * 100000 + k (k = 0 for stuff)',
            instances='annotations/instances_S.json: things only, RLE masks (crowd: '
                      'uncompressed RLE, iscrowd=1)',
            semantic='annotations/semantic_S/*.png: index into `classes` (things first, then '
                     'stuff; also in annotations/classes.json), 255 = VOID; crowd pixels keep their class',
            seeds='image i of split S comes from numpy default_rng([seed, 0 train / 1 val, i])'))
    _dump(meta, os.path.join(out_dir, 'meta.json'))
    return meta
