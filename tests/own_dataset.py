"""A user's own small dataset, written by this file's own code (not the synthetic generator, not the converters).

"Coins": round things of one class (``coin``) on a textured stuff class (``background``), some of them
touching, in the formats users bring:

* :func:`write_coco_panoptic`: the COCO panoptic layout the configs read (``train/``, ``val/``,
  ``annotations/panoptic_{split}.json`` + PNGs, ``annotations/instances_{split}.json`` with RLE masks);
* :func:`write_coco_instances_and_stuff`: COCO instances JSON (polygons) + a label PNG of the stuff per
  image and a class table, the input of ``tools/dataset_converters/coco_instances2panoptic.py``.

Category ids are deliberately not 1..C in thing-first order (``background`` is id 7, listed first), so a
reader that assumes COCO's ids or order gets it wrong.
"""
import json
import os
import os.path as osp
from typing import List, Tuple

import numpy as np
from PIL import Image

COIN, BACKGROUND = 3, 7  # category ids
CATEGORIES = [dict(id=BACKGROUND, name='background', isthing=0, supercategory='table'),
              dict(id=COIN, name='coin', isthing=1, supercategory='money')]


def _scene(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, List[np.ndarray]]:
    """An RGB image [S, S, 3] uint8 and the boolean masks [S, S] of its coins (disjoint, maybe touching)."""
    yy, xx = np.mgrid[:size, :size]
    table = np.stack([90 + 20 * np.sin(xx / 3.0 + rng.uniform(0, 6)), 60 + 10 * np.cos(yy / 5.0),
                      40 + 0 * xx], -1) + rng.normal(0, 6, (size, size, 3))
    image, taken, masks = table, np.zeros((size, size), bool), []
    for _ in range(int(rng.integers(2, 6))):
        r = rng.uniform(size * 0.08, size * 0.16)
        cy, cx = rng.uniform(r, size - r, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        disc &= ~taken
        if disc.sum() < 12:
            continue
        shade = rng.uniform(150, 230)
        rim = disc & ((yy - cy) ** 2 + (xx - cx) ** 2 >= (r - 1.5) ** 2)
        image = np.where(disc[..., None], [shade, shade * 0.85, shade * 0.4], image)
        image = np.where(rim[..., None], [shade * 0.6, shade * 0.5, shade * 0.2], image)
        taken |= disc
        masks.append(disc)
    return np.clip(image, 0, 255).astype(np.uint8), masks


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))


def _bbox(mask: np.ndarray) -> List[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def _polygon(mask: np.ndarray) -> List[float]:
    """A polygon (the mask's boundary pixels, ordered by angle around the centre) of a convex-ish mask."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    points = []
    for a in angles:
        t = 0.0
        while True:
            y, x = cy + (t + 0.5) * np.sin(a), cx + (t + 0.5) * np.cos(a)
            iy, ix = int(round(y)), int(round(x))
            if not (0 <= iy < mask.shape[0] and 0 <= ix < mask.shape[1]) or not mask[iy, ix]:
                break
            t += 0.5
        points += [float(cx + (t + 0.5) * np.cos(a)), float(cy + (t + 0.5) * np.sin(a))]
    return points


def write_coco_panoptic(root: str, num_train: int = 8, num_val: int = 4, size: int = 64, seed: int = 0) -> str:
    """The COCO panoptic layout (module docstring) under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', f'panoptic_{split}'), exist_ok=True)
        images, pan_anns, inst_anns = [], [], []
        for i in range(count):
            image_id = 100 * (split == 'val') + i + 1
            image, masks = _scene(rng, size)
            name = f'coins_{split}_{i:03d}'
            Image.fromarray(image).save(osp.join(root, split, name + '.jpg'), quality=95)
            ids = np.full((size, size), 1, np.int64)  # segment 1: the background
            segments = [dict(id=1, category_id=BACKGROUND, iscrowd=0, area=0, bbox=[0, 0, size, size])]
            for k, mask in enumerate(masks):
                seg_id = 50 + 3 * k  # ids need not be contiguous
                ids[mask] = seg_id
                segments.append(dict(id=seg_id, category_id=COIN, iscrowd=0, area=int(mask.sum()), bbox=_bbox(mask)))
                inst_anns.append(dict(id=len(inst_anns) + 1, image_id=image_id, category_id=COIN, iscrowd=0,
                                      area=float(mask.sum()), bbox=_bbox(mask), segmentation=_rle(mask)))
            segments[0]['area'] = int((ids == 1).sum())
            rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
            Image.fromarray(rgb).save(osp.join(root, 'annotations', f'panoptic_{split}', name + '.png'))
            images.append(dict(id=image_id, file_name=name + '.jpg', height=size, width=size))
            pan_anns.append(dict(image_id=image_id, file_name=name + '.png', segments_info=segments))
        with open(osp.join(root, 'annotations', f'panoptic_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=pan_anns, categories=CATEGORIES), f)
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=inst_anns,
                           categories=[dict(c) for c in CATEGORIES if c['isthing']]), f)
    return root


def write_coco_instances_and_stuff(root: str, num_train: int = 8, num_val: int = 4, size: int = 64,
                                   seed: int = 0) -> str:
    """COCO instances (polygons) + a stuff label PNG per image (0 = background, 255 = unlabelled) + a class
    table ``stuff_classes.json``; images in ``images/{split}/``. Returns ``root``."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'stuff_classes.json'), 'w') as f:
        json.dump({'0': 'background', '255': None}, f)  # 255: under the coins, no stuff
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'stuff', split), exist_ok=True)
        images, anns = [], []
        for i in range(count):
            image_id = 100 * (split == 'val') + i + 1
            image, masks = _scene(rng, size)
            name = f'coins_{split}_{i:03d}'
            Image.fromarray(image).save(osp.join(root, 'images', split, name + '.jpg'), quality=95)
            stuff = np.zeros((size, size), np.uint8)
            for mask in masks:
                stuff[mask] = 255  # under the coins: no stuff label
                anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=COIN, iscrowd=0,
                                 area=float(mask.sum()), bbox=_bbox(mask), segmentation=[_polygon(mask)]))
            Image.fromarray(stuff).save(osp.join(root, 'stuff', split, name + '.png'))
            images.append(dict(id=image_id, file_name=name + '.jpg', height=size, width=size))
        with open(osp.join(root, f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=anns,
                           categories=[dict(id=COIN, name='coin', supercategory='money')]), f)
    return root
