"""Where a dataset's classes come from, read once, for the datasets, the model and the metrics alike.

A dataset's classes are a fact of its annotation files, so a config need not repeat them. For each
kind of dataset the classes come from the first source that has them:

* panoptic / instance (COCO format): the config's ``metainfo.classes``, else the annotation JSON's
  ``categories`` (``isthing``, absent meaning a thing; ``color`` as the palette), else the dataset
  class's ``METAINFO`` (COCO's, when the files are not on this machine, e.g. to build a model);
* semantic (mmseg): the config's ``metainfo.classes``, else a classes file in the data root
  (``classes.json`` or ``classes.txt``, also under ``annotations/``), else the dataset class's
  ``METAINFO`` (ADE20K, Cityscapes), else the label maps themselves (classes ``class_0``...
  up to the largest label found, 255 being ignore).

Panoptic classes are ordered things first (the model's convention), each group in file order, as
:func:`m2f_mm.datasets.coco_format.ordered_categories` orders them when the dataset loads.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import M2FConfigError
from ..utils.palette import distinct_palette

CLASSES_FILES = ('classes.json', 'classes.txt', 'annotations/classes.json', 'annotations/classes.txt')
_TAIL_BYTES = 4 << 20  # COCO files put ``categories`` last: read the tail of big files first


@dataclass
class DatasetClasses:
    """A dataset's classes as the package uses them (``metainfo`` of the datasets, model class counts)."""
    classes: Tuple[str, ...]
    thing_classes: Optional[Tuple[str, ...]] = None  # None: semantic data (no thing / stuff split)
    stuff_classes: Optional[Tuple[str, ...]] = None
    palette: List[Tuple[int, int, int]] = field(default_factory=list)
    source: str = ''  # where they came from, for messages: a file, 'metainfo', a dataset class
    fallback: bool = False  # a dataset class's METAINFO: used only when no file or metainfo tells

    def metainfo(self) -> dict:
        meta = dict(classes=self.classes, palette=[tuple(c) for c in self.palette])
        if self.thing_classes is not None:
            meta.update(thing_classes=self.thing_classes, stuff_classes=self.stuff_classes)
        return meta

    @property
    def counts(self) -> Tuple[int, int]:
        """(things, stuff); semantic data counts every class as stuff."""
        if self.thing_classes is None:
            return 0, len(self.classes)
        return len(self.thing_classes), len(self.stuff_classes)


def read_categories(path: str) -> List[dict]:
    """The ``categories`` list of a COCO-format JSON file.

    Big files (COCO's are hundreds of MB) are searched from their tail first, where COCO writers put
    ``categories``; the whole file is parsed only when that fails.

    Raises:
        M2FConfigError: the file cannot be read, is not JSON or has no ``categories`` list.
    """
    try:
        size = os.path.getsize(path)
        if size > _TAIL_BYTES:
            with open(path, 'rb') as f:
                f.seek(size - _TAIL_BYTES)
                tail = f.read().decode('utf-8', errors='ignore')
            start = tail.rfind('"categories"')
            if start >= 0:
                colon = tail.index(':', start)
                try:
                    cats, _ = json.JSONDecoder().raw_decode(tail[colon + 1:].lstrip())
                    if isinstance(cats, list):
                        return _checked_categories(cats, path)
                except ValueError:
                    pass
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise M2FConfigError(f'cannot read annotation file {path}: {err}. Fix: point the config at a COCO-format '
                             'JSON file') from err
    cats = data.get('categories') if isinstance(data, dict) else None
    if not isinstance(cats, list):
        raise M2FConfigError(f'annotation file {path} has no "categories" list: it is not a COCO-format file. Fix: '
                             'convert it with one of tools/dataset_converters/ (docs/custom_dataset.md)')
    return _checked_categories(cats, path)


def _checked_categories(cats: list, path: str) -> List[dict]:
    for cat in cats:
        if not isinstance(cat, dict) or 'id' not in cat or 'name' not in cat:
            raise M2FConfigError(f'annotation file {path}: every category needs "id" and "name", got {cat!r}')
    names = [c['name'] for c in cats]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise M2FConfigError(f'annotation file {path} names categories {dup} twice: class names must be unique')
    if not cats:
        raise M2FConfigError(f'annotation file {path} has an empty "categories" list. Fix: list the classes in it')
    return cats


def classes_from_categories(cats: Sequence[dict], source: str, panoptic: bool,
                            known_palette: Optional[Dict[str, Sequence[int]]] = None) -> DatasetClasses:
    """COCO ``categories`` -> classes (things first for panoptic data) with a palette.

    The palette takes each category's ``color`` if it has one, else the colour ``known_palette`` gives
    its name (a dataset class's METAINFO), else a distinct generated colour.
    """
    things = [c for c in cats if c.get('isthing', 1)]
    stuff = [c for c in cats if not c.get('isthing', 1)]
    ordered = things + stuff if panoptic else list(cats)
    generated = distinct_palette(len(ordered))
    palette = []
    for i, cat in enumerate(ordered):
        colour = cat.get('color') or (known_palette or {}).get(cat['name']) or generated[i]
        palette.append(tuple(int(v) for v in colour))
    names = tuple(c['name'] for c in ordered)
    if not panoptic:
        return DatasetClasses(names, names, (), palette, source)
    return DatasetClasses(names, tuple(c['name'] for c in things), tuple(c['name'] for c in stuff), palette, source)


def read_classes_file(path: str) -> DatasetClasses:
    """A semantic dataset's classes file.

    ``classes.txt``: one class name per line (label 0 first). ``classes.json``: a list of names, a
    list of ``{"name", "color"}`` (optionally ``"id"`` = label), or ``{"classes": [...], "palette": [...]}``.
    """
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if path.endswith('.txt'):
            names = [line.strip() for line in text.splitlines() if line.strip()]
            palette = []
        else:
            data = json.loads(text)
            entries = data.get('classes', data.get('categories')) if isinstance(data, dict) else data
            palette = list(data.get('palette') or []) if isinstance(data, dict) else []
            if entries and isinstance(entries[0], dict):
                if all('id' in e for e in entries):
                    entries = sorted(entries, key=lambda e: e['id'])
                    if [e['id'] for e in entries] != list(range(len(entries))):
                        raise ValueError('the "id"s of a classes file are the labels 0, 1, ... in the label PNGs')
                palette = [e.get('color') for e in entries] if all(e.get('color') for e in entries) else palette
                entries = [e['name'] for e in entries]
            names = [str(n) for n in entries or []]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise M2FConfigError(f'cannot read classes file {path}: {err}. Fix: one class name per line (.txt), or a '
                             'JSON list of names (.json)') from err
    if not names:
        raise M2FConfigError(f'classes file {path} lists no class. Fix: one class name per line, label 0 first')
    if palette and len(palette) != len(names):
        raise M2FConfigError(f'classes file {path} has {len(names)} classes but {len(palette)} palette colours')
    palette = [tuple(int(v) for v in c) for c in palette] or distinct_palette(len(names))
    return DatasetClasses(tuple(names), None, None, palette, path)


def find_classes_file(data_root: Optional[str]) -> Optional[str]:
    """The first of :data:`CLASSES_FILES` under ``data_root`` that exists."""
    if not data_root:
        return None
    for name in CLASSES_FILES:
        path = osp.join(data_root, name)
        if osp.isfile(path):
            return path
    return None


def classes_from_label_maps(paths: Iterable[str], source: str, ignore_index: int = 255) -> DatasetClasses:
    """Classes ``class_0 .. class_K`` with K the largest label (``ignore_index`` aside) in the label PNGs."""
    import numpy as np
    from PIL import Image
    largest = -1
    for path in paths:
        with Image.open(path) as img:
            values = np.unique(np.asarray(img))
        values = values[values != ignore_index]
        if len(values):
            largest = max(largest, int(values.max()))
    if largest < 0:
        raise M2FConfigError(f'cannot tell the classes of {source}: no label PNG holds a label other than '
                             f'{ignore_index}. Fix: give the classes in a classes.txt in the data root, one per line')
    names = tuple(f'class_{i}' for i in range(largest + 1))
    return DatasetClasses(names, None, None, distinct_palette(len(names)), f'the label maps under {source}')


def same_classes(a: DatasetClasses, b: DatasetClasses) -> bool:
    return (a.classes, a.thing_classes, a.stuff_classes) == (b.classes, b.thing_classes, b.stuff_classes)


def describe_difference(a: DatasetClasses, b: DatasetClasses) -> str:
    """What differs between two class lists, in a few words."""
    only_a = [n for n in a.classes if n not in b.classes]
    only_b = [n for n in b.classes if n not in a.classes]
    if only_a or only_b:
        return (f'{len(a.classes)} classes vs {len(b.classes)}'
                + (f'; only in the first: {only_a[:5]}' if only_a else '')
                + (f'; only in the second: {only_b[:5]}' if only_b else ''))
    if a.thing_classes is not None and b.thing_classes is not None and set(a.thing_classes) != set(b.thing_classes):
        moved = sorted(set(a.thing_classes) ^ set(b.thing_classes))
        return f'thing / stuff split differs for {moved[:5]}'
    return f'the same {len(a.classes)} classes in another order'
