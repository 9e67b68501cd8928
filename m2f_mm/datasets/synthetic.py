"""Deterministic synthetic shape scenes written in COCO / mmseg on-disk formats.

A scene is 2-4 textured stuff regions (``sky``, ``grass``, ``water``) with 2-8 thing instances
(``circle``, ``square``, ``triangle``, ``star``) painted on top: sizes from ~6 px to ~45% of the
short side, touching and occluding one another (every instance keeps >= half of its area
visible), hue noise that overlaps between some classes (so shape matters), thin VOID lines on
some stuff boundaries and, rarely, one ``iscrowd=1`` cluster of small same-class shapes.

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

import colorsys
import json
import math
import os
import shutil
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from ..utils.panoptic_ids import id2rgb

THING_CLASSES = ('circle', 'square', 'triangle', 'star')
STUFF_CLASSES = ('sky', 'grass', 'water')
CLASSES = THING_CLASSES + STUFF_CLASSES
THING_IDS = (1, 2, 3, 5)
STUFF_IDS = (10, 12, 13)
CATEGORY_IDS = THING_IDS + STUFF_IDS
CLASS_INDEX = {cat_id: i for i, cat_id in enumerate(CATEGORY_IDS)}
PALETTE = ((220, 20, 60), (250, 190, 0), (190, 0, 190), (255, 110, 0), (135, 206, 235),
           (34, 139, 34), (0, 80, 140))
IGNORE_INDEX = 255
ID_STRIDE = 100_000  # segment id = category_id * ID_STRIDE + k: uses all of R, G and B
SPLIT_STREAMS = {'train': 0, 'val': 1}
SPLIT_ID_OFFSET = {'train': 0, 'val': 1_000_000}
GENERATOR = 'm2f_mm.datasets.synthetic'
VERSION = 1
MIN_SIDE, MAX_SIDE = 32, 2048  # valid image side lengths
MAX_IMAGES = 1_000_000
MAX_SEED = 2**32 - 1
MIN_AREA = 12  # smallest visible thing area (pixels)
THING_HUES = (0.0, 0.14, 0.85, 0.06)  # circle red, square yellow, triangle magenta, star orange
HUE_NOISE = 0.06
CROWD_PROB = 0.08
VOID_PROB = 0.7


@dataclass
class Scene:
    """One generated scene.

    image: uint8[H, W, 3] RGB. pan_ids: int64[H, W] panoptic segment id, 0 = VOID.
    segments: ``{'id', 'category_id', 'iscrowd'}`` for every non-zero id of ``pan_ids``.
    """
    image: np.ndarray
    pan_ids: np.ndarray
    segments: list


def validate_args(num_train: int, num_val: int, size: Sequence[int], seed: int) -> None:
    """Raise ``ValueError`` naming the argument and its valid range if any is impossible."""
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 1 <= value <= MAX_IMAGES:
            raise ValueError(f'{name} must be an integer in [1, {MAX_IMAGES}], got {value!r}')
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and MIN_SIDE <= s <= MAX_SIDE
                                 for s in size):
        raise ValueError(f'size must be (height, width), each an integer in [{MIN_SIDE}, '
                         f'{MAX_SIDE}] (smaller cannot hold the stuff regions and the '
                         f'smallest shapes), got {tuple(size)!r}')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed <= MAX_SEED:
        raise ValueError(f'seed must be an integer in [0, {MAX_SEED}], got {seed!r}')


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The independent random stream of image ``index`` of ``split``."""
    return np.random.default_rng([seed, SPLIT_STREAMS[split], index])


def _smooth_field(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray,
                  amp: float) -> np.ndarray:
    """float[H, W] sum of three random low-frequency sinusoids of total amplitude ~``amp``."""
    h, w = yy.shape
    out = np.zeros_like(yy)
    for _ in range(3):
        fy, fx = rng.uniform(0.5, 2.0, size=2) * 2 * math.pi / np.array([h, w])
        out += np.sin(fy * yy * rng.choice([-1, 1]) + fx * xx + rng.uniform(0, 2 * math.pi))
    return out * (amp / 3)


def stuff_layout(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the image into 2-4 wavy Voronoi regions.

    Returns region: int64[H, W] region index, region_class: int64[K] stuff index per region.
    """
    k = int(rng.integers(2, 5))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centres = rng.uniform((0, 0), (h, w), size=(k, 2)).astype(np.float32)
    dist = np.stack([np.hypot(yy - cy, xx - cx) + _smooth_field(rng, yy, xx, 0.12 * min(h, w))
                     for cy, cx in centres])
    return dist.argmin(0), rng.integers(0, len(STUFF_CLASSES), size=k)


def stuff_texture(rng: np.random.Generator, stuff: int, h: int, w: int) -> np.ndarray:
    """float32[H, W, 3] texture of stuff class ``stuff`` (0 sky, 1 grass, 2 water)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi)
    if stuff == 0:  # sky: pale blue, smooth vertical gradient, faint noise
        base = rng.uniform((140, 185, 228), (180, 215, 250))
        tex = base - 30 * (yy / h - 0.5)[..., None]
        sigma = 3.0
    elif stuff == 1:  # grass: green, slanted thin stripes, strong noise
        base = rng.uniform((40, 115, 25), (80, 160, 60))
        stripes = 20 * np.sin(2 * math.pi * (xx + rng.uniform(-0.4, 0.4) * yy)
                              / rng.uniform(3, 6) + phase)
        tex = base + stripes[..., None] * np.array([0.5, 1.0, 0.4])
        sigma = 12.0
    else:  # water: dark blue-teal, horizontal wavy bands
        base = rng.uniform((15, 65, 115), (40, 100, 150))
        warp = 2 * np.sin(2 * math.pi * xx / rng.uniform(12, 24))
        waves = 22 * np.sin(2 * math.pi * (yy + warp) / rng.uniform(5, 9) + phase)
        tex = base + waves[..., None] * np.array([0.4, 0.8, 1.0])
        sigma = 5.0
    return (tex + rng.normal(0, sigma, size=(h, w, 3))).astype(np.float32)


def rasterize_shape(kind: int, cx: float, cy: float, r: float, angle: float,
                    h: int, w: int) -> np.ndarray:
    """bool[H, W] mask of thing ``kind`` (index into THING_CLASSES) of size ``r`` at (cx, cy).

    Areas are ~3 r^2 for every kind; the part outside the image is cut off.
    """
    canvas = Image.new('L', (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    else:
        if kind == 1:
            radii, n = [0.9 * math.sqrt(2) * r], 4
        elif kind == 2:
            radii, n = [1.5 * r], 3
        else:
            radii, n = [1.6 * r, 0.65 * r], 10
        pts = [(cx + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / n),
                cy + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / n))
               for i in range(n)]
        draw.polygon(pts, fill=1)
    return np.asarray(canvas, dtype=bool)


def _thing_colour(rng: np.random.Generator, kind: int) -> np.ndarray:
    """float[3] RGB colour: the class hue plus noise, random saturation and value."""
    hue = (THING_HUES[kind] + rng.uniform(-HUE_NOISE, HUE_NOISE)) % 1.0
    return 255 * np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 1), rng.uniform(0.6, 1)))


def _paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, kind: int,
           cx: float, cy: float, r: float) -> None:
    """Paint ``mask`` of ``image`` (float32[H, W, 3]) with a shaded colour of class ``kind``."""
    ys, xs = np.nonzero(mask)
    theta = rng.uniform(0, 2 * math.pi)
    ramp = ((xs - cx) * math.cos(theta) + (ys - cy) * math.sin(theta)) / max(r, 1.0)
    image[ys, xs] = _thing_colour(rng, kind)[None] * (1 + 0.18 * np.clip(ramp, -1, 1))[:, None]


def _fits(mask: np.ndarray, owner: np.ndarray, areas: list) -> bool:
    """Whether ``mask`` is big enough and leaves >= half of every earlier instance visible."""
    if mask.sum() < MIN_AREA:
        return False
    if not areas:
        return True
    taken = owner >= 0
    visible = np.bincount(owner[taken], minlength=len(areas))
    covered = np.bincount(owner[mask & taken], minlength=len(areas))
    return bool(np.all(visible - covered >= np.maximum(MIN_AREA, 0.5 * np.array(areas))))


def generate_scene(rng: np.random.Generator, h: int, w: int) -> Scene:
    """Draw one scene of size H x W from ``rng``."""
    region, region_class = stuff_layout(rng, h, w)
    image = np.zeros((h, w, 3), np.float32)
    for s in np.unique(region_class):
        sel = np.isin(region, np.flatnonzero(region_class == s))
        image[sel] = stuff_texture(rng, int(s), h, w)[sel]
    owner = np.full((h, w), -1, np.int64)  # index into `placed`, -1 = stuff
    placed: list[tuple[int, int]] = []  # (thing kind, iscrowd)
    areas: list[int] = []
    circles: list[tuple[float, float, float]] = []
    r_max = 0.225 * min(h, w)
    if rng.random() < CROWD_PROB:  # one crowd: a cluster of 4-7 small shapes of one class
        kind, cx, cy = int(rng.integers(len(THING_CLASSES))), rng.uniform(12, w - 12), \
            rng.uniform(12, h - 12)
        parts = [(rng.uniform(cx - 10, cx + 10), rng.uniform(cy - 10, cy + 10), rng.uniform(3, 5.5))
                 for _ in range(int(rng.integers(4, 8)))]
        union = np.zeros((h, w), bool)
        for px, py, pr in parts:
            part = rasterize_shape(kind, px, py, pr, rng.uniform(0, 2 * math.pi), h, w)
            _paint(rng, image, part, kind, px, py, pr)
            union |= part
        owner[union] = 0
        placed.append((kind, 1))
        areas.append(int(union.sum()))
        circles.append((cx, cy, 12.0))
    for _ in range(int(rng.integers(2, 9))):
        kind = int(rng.integers(len(THING_CLASSES)))
        r = rng.uniform(3, 5) if rng.random() < 0.25 else math.exp(rng.uniform(math.log(5),
                                                                                 math.log(r_max)))
        for _attempt in range(5):
            if circles and rng.random() < 0.35:  # touch / overlap an earlier instance
                ox, oy, orad = circles[int(rng.integers(len(circles)))]
                phi, dist = rng.uniform(0, 2 * math.pi), (orad + r) * rng.uniform(0.8, 1.05)
                cx, cy = ox + dist * math.cos(phi), oy + dist * math.sin(phi)
            else:
                cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            mask = rasterize_shape(kind, cx, cy, r, rng.uniform(0, 2 * math.pi), h, w)
            if _fits(mask, owner, areas):
                _paint(rng, image, mask, kind, cx, cy, r)
                owner[mask] = len(placed)
                placed.append((kind, 0))
                areas.append(int(mask.sum()))
                circles.append((cx, cy, r))
                break
    void = np.zeros((h, w), bool)
    if rng.random() < VOID_PROB:  # 1-px unlabeled lines where stuff regions meet
        void[:, 1:] |= region[:, 1:] != region[:, :-1]
        void[1:, :] |= region[1:, :] != region[:-1, :]
    pan = np.zeros((h, w), np.int64)
    segments = []
    counts = [0] * len(THING_CLASSES)
    for j, (kind, crowd) in enumerate(placed):
        counts[kind] += 1
        seg_id = THING_IDS[kind] * ID_STRIDE + counts[kind]
        pan[owner == j] = seg_id
        segments.append(dict(id=seg_id, category_id=THING_IDS[kind], iscrowd=crowd))
    for s, cat_id in enumerate(STUFF_IDS):
        sel = np.isin(region, np.flatnonzero(region_class == s)) & ~void & (owner < 0)
        if sel.any():
            pan[sel] = cat_id * ID_STRIDE
            segments.append(dict(id=cat_id * ID_STRIDE, category_id=cat_id, iscrowd=0))
    image += rng.normal(0, 3, size=image.shape)
    return Scene(np.clip(np.rint(image), 0, 255).astype(np.uint8), pan, segments)


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
            raise ValueError(f'out must be a new or empty directory or a previous synthetic set; '
                             f'{out_dir!r} holds other files')
        for name in ('train', 'val', 'annotations', 'meta.json'):
            path = os.path.join(out_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    os.makedirs(out_dir, exist_ok=True)


def generate_dataset(out_dir: str, num_train: int = 200, num_val: int = 50,
                     size: Sequence[int] = (128, 128), seed: int = 0,
                     progress: Optional[Callable[[], None]] = None) -> dict:
    """Write the whole synthetic set (train + val + meta.json) under ``out_dir``.

    ``progress`` is called once per written image. Returns ``meta.json``'s content.
    """
    validate_args(num_train, num_val, size, seed)
    _prepare_out_dir(out_dir)
    size = [int(s) for s in size]
    stats = {split: write_split(out_dir, split, n, size, seed, progress)
             for split, n in (('train', num_train), ('val', num_val))}
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
                     'stuff), 255 = VOID; crowd pixels keep their class',
            seeds='image i of split S comes from numpy default_rng([seed, 0 train / 1 val, i])'))
    _dump(meta, os.path.join(out_dir, 'meta.json'))
    return meta
