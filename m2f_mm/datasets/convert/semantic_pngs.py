"""Semantic label PNGs (pixel value = class value) + a class table -> mmseg label PNGs and classes.json.

The class table (JSON), in one of two forms:

* a list of names, ``["background", "coin"]``: value k is class k; value 255 is ignored (so is
  ``{"classes": [names], ...}``, e.g. a classes.json this package wrote, with its palette);
* ``{"classes": [{"name": "road", "value": 7, "color": [128, 64, 128]},
                 {"name": "car", "values": [26, 27]}], "ignore": [0, 255]}``: each class lists the
  values it takes (several values, or several entries with one name, merge into one class: the
  remap), ``color`` is optional, ``ignore`` lists the values that become 255 (default [255]).

Output label = the class's position among the distinct names, in table order; 255 = ignore. A
value in a PNG that the table neither lists nor ignores is refused, naming the PNG and the value.

Shape legend: H x W one image.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .layout import (IGNORE_INDEX, Category, ConversionError, SplitWriter, check_same_size, default_color, find_file,
                     image_size, list_images, load_json, read_index_png)


def read_semantic_table(path: str, extra_ignore: Sequence[int] = ()) -> Tuple[List[Category], Dict[int, int]]:
    """The class table -> (classes in label order, {PNG value: output label, 255 for ignored values})."""
    data = load_json(path, 'class table')
    if isinstance(data, list):
        data = dict(classes=data)
    if isinstance(data, dict) and isinstance(data.get('classes'), list) and all(
            isinstance(name, str) for name in data['classes']):
        colors = data.get('palette') or []
        data = dict(data, classes=[dict(name=name, value=k, **(dict(color=colors[k]) if k < len(colors) else {}))
                                   for k, name in enumerate(data['classes'])])
    if not isinstance(data, dict) or not isinstance(data.get('classes'), list) or not data['classes']:
        raise ConversionError(f'class table {path} must be a list of names or {{"classes": [{{"name", "value"}}], '
                              '"ignore": [...]}')
    names: Dict[str, Tuple[int, int, int]] = {}
    value_to_name: Dict[int, str] = {}
    for k, entry in enumerate(data['classes']):
        if not isinstance(entry, dict) or not isinstance(entry.get('name'), str) or \
                ('value' in entry) == ('values' in entry):
            raise ConversionError(f'class table {path}: entry #{k} is {str(entry)[:80]}; each needs "name" and '
                                  'either "value" or "values"')
        values = entry['values'] if 'values' in entry else [entry['value']]
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConversionError(f'class table {path}: class {entry["name"]!r} has value {value!r}; values are '
                                      'non-negative integers')
            if value in value_to_name and value_to_name[value] != entry['name']:
                raise ConversionError(f'class table {path}: value {value} is given to both '
                                      f'{value_to_name[value]!r} and {entry["name"]!r}; one value, one class')
            value_to_name[value] = entry['name']
        if entry['name'] not in names or entry.get('color'):
            names[entry['name']] = tuple(int(c) for c in (entry.get('color') or default_color(len(names)))[:3])
    if len(names) > IGNORE_INDEX:
        raise ConversionError(f'class table {path} has {len(names)} classes; label PNGs hold at most {IGNORE_INDEX}')
    ignore = set(int(v) for v in data.get('ignore', [IGNORE_INDEX])) | set(int(v) for v in extra_ignore)
    both = sorted(ignore & set(value_to_name))
    if both:
        raise ConversionError(f'class table {path}: values {both} are both a class and ignored; choose one')
    label_of = {name: k for k, name in enumerate(names)}
    categories = [Category(k + 1, name, False, color) for k, (name, color) in enumerate(names.items())]
    mapping = {value: label_of[name] for value, name in value_to_name.items()}
    mapping.update({value: IGNORE_INDEX for value in ignore})
    return categories, mapping


def remap_labels(values: np.ndarray, mapping: Dict[int, int], where: str) -> np.ndarray:
    """int [H, W] PNG values -> uint8 [H, W] labels through ``mapping``; unknown values are refused."""
    uniq, inverse = np.unique(values, return_inverse=True)
    unknown = [int(v) for v in uniq if int(v) not in mapping]
    if unknown:
        raise ConversionError(f'{where} has values {unknown[:10]} that the class table neither lists nor ignores; '
                              'add them to a class or to "ignore"')
    lut = np.array([mapping[int(v)] for v in uniq], np.uint8)
    return lut[inverse.reshape(values.shape)]


def convert_split(label_dir: str, image_dir: str, table_path: str, out_dir: str, split: str, *,
                  ignore: Sequence[int] = (), label_suffix: str = '.png', images: str = 'copy') -> dict:
    """Convert every image under ``image_dir`` with its label PNG ``label_dir/STEM{label_suffix}``."""
    categories, mapping = read_semantic_table(table_path, ignore)
    writer = SplitWriter(out_dir, split, categories, images=images, panoptic=False)
    for file_name in list_images(image_dir):
        stem = osp.splitext(file_name)[0]
        src = osp.join(image_dir, file_name)
        label_path = find_file(label_dir, stem, (label_suffix, ), 'label PNG')
        values = read_index_png(label_path)
        check_same_size(label_path, values.shape, src, image_size(src))
        writer.add_semantic(file_name, src, remap_labels(values, mapping, label_path))
    return writer.close()
