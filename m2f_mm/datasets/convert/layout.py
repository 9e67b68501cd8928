"""The output side of every converter: categories, label PNG reading, and one split written in the layout.

Shape legend: H x W one image; ``pan`` int64 [H, W] segment ids (0 = VOID).
"""
from __future__ import annotations

import colorsys
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ...errors import M2FError
from ...structures.panoptic_format import id2rgb, rgb2id

IGNORE_INDEX = 255
IMAGE_MODES = ('copy', 'link')


class ConversionError(M2FError, ValueError):
    """Bad converter input; the message names the file, the value and the fix in one line."""


@dataclass(frozen=True)
class Category:
    """One class of the output: COCO ``id``, ``name``, thing or stuff, RGB ``color``."""
    id: int
    name: str
    isthing: bool
    color: Tuple[int, int, int]

    def to_json(self, with_isthing: bool = True) -> dict:
        out = dict(id=self.id, name=self.name, supercategory='thing' if self.isthing else 'stuff')
        return dict(out, isthing=int(self.isthing), color=list(self.color)) if with_isthing else out


def default_color(index: int) -> Tuple[int, int, int]:
    """A distinct, deterministic colour for class ``index`` (golden-ratio hue steps)."""
    r, g, b = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.75, 0.6 + 0.35 * ((index * 7) % 3) / 2)
    return int(r * 255), int(g * 255), int(b * 255)


def parse_categories(entries, where: str) -> List[Category]:
    """COCO-style ``[{"id", "name", "isthing"?, "color"?}, ...]`` -> categories (``isthing`` absent = thing).

    Raises ConversionError on a missing key, a repeated id or name, or an id outside 1..2^24-1.
    """
    if not isinstance(entries, list) or not entries:
        raise ConversionError(f'{where}: "categories" must be a non-empty list of {{"id", "name", "isthing"}}')
    out: List[Category] = []
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or 'id' not in entry or 'name' not in entry:
            raise ConversionError(f'{where}: category #{k} is {entry!r}; each needs "id" and "name"')
        cat_id = entry['id']
        if isinstance(cat_id, bool) or not isinstance(cat_id, int) or not 0 < cat_id < 256**3:
            raise ConversionError(f'{where}: category {entry["name"]!r} has id {cat_id!r}; ids are integers '
                                  f'from 1 to {256**3 - 1}')
        color = entry.get('color') or default_color(k)
        out.append(Category(cat_id, str(entry['name']), bool(entry.get('isthing', 1)),
                            tuple(int(c) for c in color[:3])))
    check_unique(out, where)
    return out


def check_unique(categories: Sequence[Category], where: str) -> None:
    """Raise ConversionError when two categories share an id or a name."""
    for key in ('id', 'name'):
        seen = set()
        for cat in categories:
            value = getattr(cat, key)
            if value in seen:
                raise ConversionError(f'{where}: two categories have {key} {value!r}; each {key} must be unique')
            seen.add(value)


def things_first(categories: Sequence[Category]) -> List[Category]:
    """Thing categories, then stuff ones, each group in the given order (mmdet's panoptic label order)."""
    return [c for c in categories if c.isthing] + [c for c in categories if not c.isthing]


def read_index_png(path: str, allow_rgb_ids: bool = False) -> np.ndarray:
    """A label / id PNG -> int64 [H, W] values.

    Grey (L), palette (P: the palette index), 16/32-bit (I;16, I) PNGs give their pixel values; an
    RGB PNG with R = G = B gives R; another RGB PNG gives R + 256 G + 256^2 B when ``allow_rgb_ids``
    (COCO panoptic style ids), else raises (colour-coded labels need a palette PNG or a grey one).
    """
    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as err:
        raise ConversionError(f'cannot read {path}: {err}') from None
    if image.mode in ('L', 'P', 'I;16', 'I;16B', 'I;16L', 'I', '1'):
        return np.asarray(image).astype(np.int64)
    rgb = np.asarray(image.convert('RGB')).astype(np.int64)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0]
    if allow_rgb_ids:
        return rgb2id(rgb)
    raise ConversionError(f'{path} is a colour ({image.mode}) PNG; label PNGs must hold class values '
                          f'(grey, palette or 16-bit PNGs). Map its colours to values first')


def image_size(path: str) -> Tuple[int, int]:
    """(height, width) of an image file, read from its header."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError) as err:
        raise ConversionError(f'cannot read image {path}: {err}') from None
    return height, width


def check_same_size(path: str, shape: Sequence[int], image_path: str, image_hw: Sequence[int]) -> None:
    """Raise ConversionError when an annotation PNG and its image differ in size."""
    if tuple(shape[:2]) != tuple(image_hw):
        raise ConversionError(f'{path} is {shape[0]}x{shape[1]} (HxW) but its image {image_path} is '
                              f'{image_hw[0]}x{image_hw[1]}; annotation and image must have the same size')


def bbox_of(mask: np.ndarray) -> List[int]:
    """bool [H, W] (not empty) -> COCO box [x, y, w, h], pixel-inclusive."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def rle_of(mask: np.ndarray, crowd: bool) -> dict:
    """bool [H, W] -> COCO RLE: compressed, or uncompressed (COCO's convention for crowd regions)."""
    if not crowd:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))
    flat = mask.astype(np.uint8).ravel(order='F')
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return dict(size=list(mask.shape), counts=([0] + counts) if flat[0] else counts)


def place_image(src: str, dst: str, mode: str) -> None:
    """Copy (mode 'copy') or symlink (mode 'link', absolute target) ``src`` to ``dst``."""
    if not osp.isfile(src):
        raise ConversionError(f'image {src} does not exist; check the images folder and the file names')
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if osp.lexists(dst):
        if osp.exists(dst) and osp.samefile(src, dst):
            return
        os.remove(dst)
    if mode == 'link':
        os.symlink(osp.abspath(src), dst)
    else:
        shutil.copyfile(src, dst)


def classes_meta(categories: Sequence[Category]) -> dict:
    """classes.json's content: names, palette and thing / stuff split in semantic label order."""
    return dict(classes=[c.name for c in categories], palette=[list(c.color) for c in categories],
                thing_classes=[c.name for c in categories if c.isthing],
                stuff_classes=[c.name for c in categories if not c.isthing], ignore_index=IGNORE_INDEX,
                categories=[c.to_json() for c in categories])


def write_classes_json(out_dir: str, categories: Sequence[Category], **extra) -> str:
    """Write OUT/classes.json; refuse when one from another class table is already there."""
    path = osp.join(out_dir, 'classes.json')
    meta = dict(classes_meta(categories), **extra)
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
        if old.get('categories') != meta['categories']:
            raise ConversionError(f'{path} lists other classes ({old.get("classes", [])[:5]}...) than this '
                                  f'conversion ({meta["classes"][:5]}...); convert every split with the same class '
                                  'table, or use another --out')
        meta = dict(old, **meta)
    os.makedirs(out_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(meta, f, indent=1)
    return path


@dataclass(frozen=True)
class SplitSpec:
    """Where and how one split is written (package docstring); picklable, so workers can encode images.

    Args:
        out_dir: the dataset root ``OUT``.
        split: the split name ``S``.
        categories: every category, in label order (semantic PNG value k = ``categories[k]``).
        images: ``'copy'`` or ``'link'`` (symlinks to the source images).
        panoptic: write the panoptic and instance files (False: images + semantic PNGs only).
    """
    out_dir: str
    split: str
    categories: Tuple[Category, ...]
    images: str = 'copy'
    panoptic: bool = True

    def __post_init__(self) -> None:
        if self.images not in IMAGE_MODES:
            raise ConversionError(f'images must be one of {IMAGE_MODES}, got {self.images!r}')
        if not self.split or '/' in self.split or self.split.startswith('.'):
            raise ConversionError(f'split name {self.split!r} must be a plain folder name such as train or val')
        check_unique(self.categories, 'categories')

    def path(self, kind: str, name: str = '') -> str:
        """``image`` / ``panoptic`` / ``semantic`` folder (+ ``name``) of this split."""
        folder = {'image': self.split, 'panoptic': f'annotations/panoptic_{self.split}',
                  'semantic': f'annotations/semantic_{self.split}'}[kind]
        return osp.join(self.out_dir, folder, name)

    def encode(self, file_name: str, src_image: str, image_id, pan: np.ndarray, segments: Sequence[dict],
               sem: np.ndarray = None) -> dict:
        """Write one image's files; return its JSON entries (instance annotations without ids) and counts.

        Args:
            file_name: the image's path under ``OUT/S`` (sub-folders kept).
            src_image: where the image is now.
            image_id: the COCO image id (int or str).
            pan: int [H, W] segment ids, 0 = VOID; the image's size.
            segments: ``{"id", "category_id", "iscrowd"?}`` of every id in ``pan`` (VOID aside).
            sem: uint8 [H, W] labels to write instead of the ones ``pan`` gives (255 = ignore).
        """
        label_of = {c.id: k for k, c in enumerate(self.categories)}
        thing_ids = {c.id for c in self.categories if c.isthing}
        stem = osp.splitext(file_name)[0]
        place_image(src_image, self.path('image', file_name), self.images)
        pan = np.asarray(pan, np.int64)
        derived = np.full(pan.shape, IGNORE_INDEX, np.uint8)
        infos, instances = [], []
        uniq, inverse = np.unique(pan, return_inverse=True)
        inverse = inverse.reshape(pan.shape)
        ids = np.array([s['id'] for s in segments], np.int64)
        if set(ids.tolist()) != set(uniq.tolist()) - {0} or len(ids) != len(set(ids.tolist())):
            raise ConversionError(f'{file_name}: segments {ids.tolist()[:10]} do not match the ids of its map '
                                  f'{uniq.tolist()[:10]} (every id needs one non-empty segment)')
        for seg, k in zip(segments, np.searchsorted(uniq, ids)):
            mask = inverse == k
            crowd = bool(seg.get('iscrowd', 0))
            info = dict(id=int(seg['id']), category_id=int(seg['category_id']), iscrowd=int(crowd),
                        area=int(mask.sum()), bbox=bbox_of(mask))
            infos.append(info)
            derived[mask] = label_of[info['category_id']]
            if self.panoptic and info['category_id'] in thing_ids:
                instances.append(dict(image_id=image_id, category_id=info['category_id'], iscrowd=int(crowd),
                                      area=float(info['area']), bbox=[float(v) for v in info['bbox']],
                                      segmentation=rle_of(mask, crowd)))
        sem = derived if sem is None else np.asarray(sem, np.uint8)
        _save_png(sem, self.path('semantic', stem + '.png'))
        if self.panoptic:
            _save_png(id2rgb(pan), self.path('panoptic', stem + '.png'))
        return dict(image=dict(id=image_id, file_name=file_name, height=int(pan.shape[0]), width=int(pan.shape[1])),
                    panoptic=dict(image_id=image_id, file_name=stem + '.png', segments_info=infos),
                    instances=instances,
                    counts=dict(images=1, segments=len(infos), things=len(instances),
                                crowd=sum(a['iscrowd'] for a in instances), void_pixels=int((sem == IGNORE_INDEX).sum()),
                                pixels=int(sem.size)))

    def encode_semantic(self, file_name: str, src_image: str, sem: np.ndarray) -> dict:
        """One image of a semantic-only split: its file and uint8 [H, W] labels (255 = ignore)."""
        place_image(src_image, self.path('image', file_name), self.images)
        _save_png(np.asarray(sem, np.uint8), self.path('semantic', osp.splitext(file_name)[0] + '.png'))
        return dict(image=dict(id=osp.splitext(file_name)[0], file_name=file_name, height=int(sem.shape[0]),
                               width=int(sem.shape[1])), panoptic=None, instances=[],
                    counts=dict(images=1, void_pixels=int((np.asarray(sem) == IGNORE_INDEX).sum()),
                                pixels=int(sem.size)))


class SplitWriter:
    """Collects one split (``add`` / ``add_semantic`` per image, or ``collect`` of ``SplitSpec.encode``
    results made elsewhere), then ``close`` writes the JSON files and classes.json."""

    def __init__(self, out_dir: str, split: str, categories: Sequence[Category], images: str = 'copy',
                 panoptic: bool = True) -> None:
        self.spec = SplitSpec(out_dir, split, tuple(categories), images, panoptic)
        self.image_entries: List[dict] = []
        self.pan_entries: List[dict] = []
        self.inst_entries: List[dict] = []
        self.stats = dict(images=0, segments=0, things=0, crowd=0, void_pixels=0, pixels=0) if panoptic else \
            dict(images=0, void_pixels=0, pixels=0)

    def add(self, *args, **kwargs) -> None:
        """``SplitSpec.encode`` one image and collect it."""
        self.collect(self.spec.encode(*args, **kwargs))

    def add_semantic(self, *args) -> None:
        """``SplitSpec.encode_semantic`` one image and collect it."""
        self.collect(self.spec.encode_semantic(*args))

    def collect(self, encoded: dict) -> None:
        """Append one encoded image's entries (instance annotations numbered from 1 in order)."""
        self.image_entries.append(encoded['image'])
        if encoded['panoptic'] is not None:
            self.pan_entries.append(encoded['panoptic'])
        for ann in encoded['instances']:
            self.inst_entries.append(dict(id=len(self.inst_entries) + 1, **ann))
        for key, value in encoded['counts'].items():
            self.stats[key] += value

    def close(self, **classes_extra) -> Dict[str, object]:
        """Write the JSON files and classes.json; return the statistics and the paths written."""
        spec = self.spec
        if not self.image_entries:
            raise ConversionError(f'no image was converted for split {spec.split!r}; check the input folders')
        suffixes = {osp.splitext(entry['file_name'])[1] for entry in self.image_entries}
        if len(suffixes) == 1:  # what mmseg's dataset needs to pair images with label PNGs
            classes_extra = dict(dict(img_suffix=suffixes.pop(), seg_map_suffix='.png'), **classes_extra)
        written = [write_classes_json(spec.out_dir, spec.categories, **classes_extra)]
        if spec.panoptic:
            info = dict(description=f'{spec.split} split converted by m2f_mm.datasets.convert')
            pan_json = osp.join(spec.out_dir, 'annotations', f'panoptic_{spec.split}.json')
            inst_json = osp.join(spec.out_dir, 'annotations', f'instances_{spec.split}.json')
            _dump(dict(info=info, images=self.image_entries, annotations=self.pan_entries,
                       categories=[c.to_json() for c in spec.categories]), pan_json)
            _dump(dict(info=info, images=self.image_entries, annotations=self.inst_entries,
                       categories=[c.to_json(False) for c in spec.categories if c.isthing]), inst_json)
            written += [pan_json, inst_json]
        stats = dict(self.stats, void_fraction=round(self.stats['void_pixels'] / max(1, self.stats['pixels']), 4))
        return dict(stats=stats, written=written)


def _save_png(array: np.ndarray, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def _dump(obj: dict, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))


def load_json(path: str, what: str) -> object:
    """A JSON file, or ConversionError naming it and the parse problem."""
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as err:
        raise ConversionError(f'cannot read {what} {path}: {err.strerror}') from None
    except ValueError as err:
        raise ConversionError(f'{what} {path} is not valid JSON: {err}') from None


def find_file(folder: str, stem: str, suffixes: Iterable[str], what: str) -> str:
    """``folder/stem + suffix`` for the first suffix that exists, else ConversionError."""
    for suffix in suffixes:
        path = osp.join(folder, stem + suffix)
        if osp.isfile(path):
            return path
    raise ConversionError(f'no {what} for {stem!r}: looked for {osp.join(folder, stem)}{{{",".join(suffixes)}}}')


def list_images(folder: str, suffixes: Sequence[str] = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')
                ) -> List[str]:
    """Image files under ``folder`` (recursive), as sorted paths relative to it."""
    if not osp.isdir(folder):
        raise ConversionError(f'images folder {folder} does not exist')
    found = []
    for root, _, files in os.walk(folder, followlinks=True):
        for name in files:
            if name.lower().endswith(tuple(suffixes)):
                found.append(osp.relpath(osp.join(root, name), folder))
    if not found:
        raise ConversionError(f'no images ({", ".join(suffixes)}) under {folder}')
    return sorted(found)
