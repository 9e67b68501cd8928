"""One setting per fact: ``data_root`` moves every dataloader and evaluator, classes come from the data.

A dataset is described once, and every other place that needs it derives it:

* ``data_root`` (top level of the config): every dataset whose ``data_root`` is left out or None
  takes it (the base dataset configs leave it out). A dataset ``data_root`` set explicitly stays.
* classes (``metainfo``: classes, thing_classes, stuff_classes, palette) are read as
  :mod:`m2f_mm.config.classes` describes and written into every dataloader's ``metainfo`` that
  does not set them;
* the model's class counts (``panoptic_head`` / ``panoptic_fusion_head`` ``num_things_classes`` /
  ``num_stuff_classes``; mmseg's ``decode_head.num_classes``) are filled when left out or None; a
  count the config sets and the data disagrees with stops the run here, naming both and the fix;
* the evaluators' files (``M2FCocoPanopticMetric`` / ``CocoPanopticMetric`` ``ann_file`` and
  ``seg_prefix``; ``CocoMetric`` ``ann_file``) are derived from the val / test dataset when left
  out or None: the panoptic JSON and PNG folder the dataset reads, and for ``CocoMetric`` the
  instances file beside it (``panoptic_val.json`` -> ``instances_val.json``).

Every function here works on an mmengine ``Config`` in place and reads no image.
"""
import os.path as osp
from dataclasses import replace
from typing import Iterator, List, Optional, Sequence, Tuple

from ..errors import M2FConfigError
from .classes import (DatasetClasses, classes_from_categories, classes_from_label_maps, describe_difference,
                      find_classes_file, read_categories, read_classes_file, same_classes)

SPLITS = ('train', 'val', 'test')
PANOPTIC_METRICS = ('M2FCocoPanopticMetric', 'CocoPanopticMetric')
INSTANCE_METRICS = ('CocoMetric', )


# -- walking a config ---------------------------------------------------------------------------------

def leaf_datasets(dataset_cfg) -> Iterator[dict]:
    """The dataset configs that read files, inside wrappers (RepeatDataset, ConcatDataset, ...)."""
    if not isinstance(dataset_cfg, dict):
        return
    if 'datasets' in dataset_cfg:
        for inner in dataset_cfg['datasets']:
            yield from leaf_datasets(inner)
    elif isinstance(dataset_cfg.get('dataset'), dict):
        yield from leaf_datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def split_datasets(cfg) -> Iterator[Tuple[str, str, dict]]:
    """(split, config key, dataset config) of every dataloader of ``cfg``."""
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if isinstance(loader, dict):
            for index, dataset in enumerate(leaf_datasets(loader.get('dataset'))):
                key = f'{split}_dataloader.dataset' + (f'[{index}]' if index else '')
                yield split, key, dataset


def evaluators(cfg, split: str) -> List[dict]:
    value = cfg.get(f'{split}_evaluator')
    if isinstance(value, dict):
        return [value] if 'type' in value else list(value.get('metrics', []))
    return list(value or [])


def _type_name(type_) -> str:
    return type_.split('.')[-1] if isinstance(type_, str) else getattr(type_, '__name__', str(type_))


def scope_of(cfg) -> str:
    return cfg.get('default_scope') or 'mmdet'


def dataset_class(dataset_cfg: dict, scope: str = 'mmdet'):
    """The registered class of a dataset config, looked up in the config's scope first (mmseg's and mmdet's
    registries both have a ``CityscapesDataset``)."""
    from mmengine.registry import DATASETS as ROOT

    from ..registry import DET_DATASETS, SEG_DATASETS
    type_ = dataset_cfg.get('type')
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    scope = type_.split('.')[0] if '.' in type_ else scope
    order = (SEG_DATASETS, DET_DATASETS) if scope == 'mmseg' else (DET_DATASETS, SEG_DATASETS)
    for registry in order + (ROOT, ):
        cls = registry.get(type_.split('.')[-1])
        if cls is not None:
            return cls
    return None


def dataset_kind(dataset_cfg: dict, scope: str = 'mmdet') -> Optional[str]:
    """'panoptic', 'instance' or 'semantic' from the dataset's registered class; None if unknown."""
    from mmdet.datasets import CocoDataset, CocoPanopticDataset
    from mmseg.datasets import BaseSegDataset
    cls = dataset_class(dataset_cfg, scope)
    if cls is None:
        return None
    if issubclass(cls, CocoPanopticDataset):
        return 'panoptic'
    if issubclass(cls, CocoDataset):
        return 'instance'
    if issubclass(cls, BaseSegDataset):
        return 'semantic'
    return None


def joined(root: Optional[str], path: Optional[str]) -> Optional[str]:
    """mmengine's rule for dataset paths: relative ones are under ``data_root``."""
    if not path:
        return path
    if root and not osp.isabs(path) and '://' not in path:
        return osp.join(root, path)
    return path


def ann_path(dataset_cfg: dict) -> Optional[str]:
    return joined(dataset_cfg.get('data_root'), dataset_cfg.get('ann_file'))


def prefix_path(dataset_cfg: dict, *keys: str) -> Optional[str]:
    prefix = dataset_cfg.get('data_prefix') or {}
    for key in keys:
        if prefix.get(key):
            return joined(dataset_cfg.get('data_root'), prefix[key])
    return None


# -- data_root --------------------------------------------------------------------------------------

def fill_data_roots(cfg) -> None:
    """Every dataset without its own ``data_root`` takes the config's top-level ``data_root``."""
    root = cfg.get('data_root')
    if not root:
        return
    for _, _, dataset in split_datasets(cfg):
        if dataset.get('data_root') is None:
            dataset['data_root'] = root


# -- classes ----------------------------------------------------------------------------------------

def _metainfo_classes(dataset_cfg: dict) -> Optional[Sequence[str]]:
    meta = dataset_cfg.get('metainfo') or {}
    classes = meta.get('classes')
    return tuple(classes) if classes else None


def _class_metainfo_palette(dataset_cfg: dict, scope: str) -> dict:
    cls = dataset_class(dataset_cfg, scope)
    meta = dict(getattr(cls, 'METAINFO', None) or {})
    names, palette = meta.get('classes') or (), meta.get('palette') or ()
    return {n: c for n, c in zip(names, palette)}


def classes_of_dataset(dataset_cfg: dict, key: str, scope: str = 'mmdet') -> Optional[DatasetClasses]:
    """The classes one dataset config describes (see :mod:`m2f_mm.config.classes`); None if unknowable here."""
    kind = dataset_kind(dataset_cfg, scope)
    given = _metainfo_classes(dataset_cfg)
    if kind in ('panoptic', 'instance'):
        path = ann_path(dataset_cfg)
        if path and osp.isfile(path):
            cats = read_categories(path)
            if given is not None:
                known = {c['name'] for c in cats}
                missing = [n for n in given if n not in known]
                if missing:
                    raise M2FConfigError(
                        f'{key}.metainfo.classes names {missing[:5]}, which are not categories of {path} (it has '
                        f'{sorted(known)[:8]}{"..." if len(known) > 8 else ""}). Fix: leave metainfo out to take the '
                        'classes of the file, or fix the names')
                cats = [c for c in cats if c['name'] in set(given)]
            return classes_from_categories(cats, path, kind == 'panoptic', _class_metainfo_palette(dataset_cfg, scope))
        if given is not None:
            meta = dataset_cfg['metainfo']
            return _from_metainfo(meta, f'{key}.metainfo', kind == 'panoptic')
        cls = dataset_class(dataset_cfg, scope)
        meta = dict(getattr(cls, 'METAINFO', None) or {})
        if meta.get('classes'):
            return replace(_from_metainfo(meta, f'{cls.__name__}.METAINFO', kind == 'panoptic'), fallback=True)
        return None
    if kind == 'semantic':
        if given is not None:
            return _from_metainfo(dataset_cfg['metainfo'], f'{key}.metainfo', False)
        found = find_classes_file(dataset_cfg.get('data_root'))
        if found:
            return read_classes_file(found)
        cls = dataset_class(dataset_cfg, scope)
        meta = dict(getattr(cls, 'METAINFO', None) or {})
        if meta.get('classes'):
            return replace(_from_metainfo(meta, f'{cls.__name__}.METAINFO', False), fallback=True)
        folder = prefix_path(dataset_cfg, 'seg_map_path')
        if folder and osp.isdir(folder):
            suffix = dataset_cfg.get('seg_map_suffix', '.png')
            paths = sorted(osp.join(folder, f) for f in _walk(folder) if f.endswith(suffix))
            if paths:
                found = classes_from_label_maps(paths, folder)
                if dataset_cfg.get('reduce_zero_label'):
                    found = DatasetClasses(found.classes[:-1], None, None, found.palette[:-1], found.source)
                return found
        return None
    return None


def _walk(folder: str) -> Iterator[str]:
    import os
    for top, _, files in os.walk(folder):
        for name in files:
            yield osp.relpath(osp.join(top, name), folder)


def _from_metainfo(meta: dict, source: str, panoptic: bool) -> DatasetClasses:
    from ..utils.palette import distinct_palette
    classes = tuple(meta['classes'])
    palette = [tuple(c) for c in (meta.get('palette') or [])]
    if len(palette) != len(classes):
        palette = distinct_palette(len(classes))
    if not panoptic:
        things = tuple(meta.get('thing_classes') or classes) if meta.get('thing_classes') is not None else None
        return DatasetClasses(classes, classes if things is None else things, (), palette, source)
    things, stuff = meta.get('thing_classes'), meta.get('stuff_classes')
    if things is None or stuff is None:
        raise M2FConfigError(f'{source} gives classes but no thing_classes / stuff_classes, which a panoptic '
                             'model needs. Fix: set both, or leave metainfo out to take them from the annotation '
                             'file (categories with isthing)')
    return DatasetClasses(classes, tuple(things), tuple(stuff), palette, source)


def discover_classes(cfg, order: Sequence[str] = SPLITS) -> Optional[DatasetClasses]:
    """The classes of the config's datasets, the same for every split, or None when none can be told.

    The first split of ``order`` whose files (or metainfo) tell wins, and every other split whose files tell
    must agree; a dataset class's METAINFO only counts when no split's files tell.

    Raises:
        M2FConfigError: two splits (or a split and its metainfo) describe different classes.
    """
    found: List[Tuple[str, DatasetClasses]] = []
    by_split = {split: [] for split in SPLITS}
    for split, key, dataset in split_datasets(cfg):
        by_split[split].append((key, dataset))
    for split in order:
        for key, dataset in by_split[split]:
            classes = classes_of_dataset(dataset, key, scope_of(cfg))
            if classes is not None:
                found.append((key, classes))
    if not found:
        return None
    found = [f for f in found if not f[1].fallback] or found[:1]
    (first_key, first), rest = found[0], found[1:]
    for key, other in rest:
        if not same_classes(first, other):
            raise M2FConfigError(
                f'{first_key} ({first.source}) and {key} ({other.source}) describe different classes: '
                f'{describe_difference(first, other)}. Fix: give both splits the same categories')
    return first


def fill_metainfo(cfg, classes: DatasetClasses) -> None:
    """Write ``classes`` into every dataloader's dataset ``metainfo`` that does not set its classes."""
    for _, _, dataset in split_datasets(cfg):
        meta = dict(dataset.get('metainfo') or {})
        if meta.get('classes'):
            if not meta.get('palette') or len(meta['palette']) != len(meta['classes']):
                meta['palette'] = [tuple(c) for c in classes.palette]
        else:
            meta.update(classes.metainfo())
            if dataset_kind(dataset, scope_of(cfg)) == 'instance':
                meta.pop('thing_classes', None)
                meta.pop('stuff_classes', None)
        dataset['metainfo'] = meta


# -- the model's class counts -----------------------------------------------------------------------

def _model_count_keys(model: dict) -> List[Tuple[str, dict, str]]:
    """(config key, sub-config, field) of every class count in ``model``."""
    keys = []
    if isinstance(model.get('module'), dict):  # a TTA wrapper
        return [(f'module.{k}', sub, f) for k, sub, f in _model_count_keys(model['module'])]
    for head in ('panoptic_head', 'panoptic_fusion_head'):
        if isinstance(model.get(head), dict):
            keys += [(f'model.{head}.{f}', model[head], f) for f in ('num_things_classes', 'num_stuff_classes')]
    if isinstance(model.get('decode_head'), dict):
        keys.append(('model.decode_head.num_classes', model['decode_head'], 'num_classes'))
    return keys


def fill_class_counts(cfg, classes: Optional[DatasetClasses], source_hint: str = '') -> None:
    """Fill the model's class counts from ``classes``; refuse counts the config sets that disagree.

    Raises:
        M2FConfigError: a count the config sets differs from the data's, or no count is set and the
            classes cannot be told (files missing).
    """
    model = cfg.get('model')
    if not isinstance(model, dict):
        return
    things, stuff = classes.counts if classes is not None else (None, None)
    wanted = {'num_things_classes': things, 'num_stuff_classes': stuff,
              'num_classes': None if classes is None else len(classes.classes)}
    wrong, unset = [], []
    for key, sub, name in _model_count_keys(model):
        value = sub.get(name)
        if value is None:
            unset.append(key)
            if wanted[name] is not None:
                sub[name] = wanted[name]
        elif wanted[name] is not None and value != wanted[name]:
            wrong.append(f'{key}={value}')
    if wrong:
        data = (f'{things} thing + {stuff} stuff classes' if classes.thing_classes is not None
                else f'{len(classes.classes)} classes')
        keys = sorted({w.split('=')[0].rsplit('.', 1)[0] for w in wrong})
        raise M2FConfigError(
            f'{", ".join(wrong)} (set in the config) disagree with {classes.source}{source_hint}, which has {data}. '
            f'Fix: leave the class counts of {" and ".join(keys)} out of the config (the model then takes them '
            'from the data), or correct them')
    if unset and classes is None:
        roots = sorted({str(d.get('data_root')) for _, _, d in split_datasets(cfg)})
        raise M2FConfigError(
            f'cannot tell the classes for {", ".join(unset)}: the datasets under {", ".join(roots)} have no annotation '
            'file, classes file (classes.json / classes.txt) or metainfo on this machine. Fix: check data_root (and '
            'the datasets\' ann_file), or set the counts in the config')


# -- evaluators -------------------------------------------------------------------------------------

def instances_file_for(panoptic_ann: str) -> str:
    """The instances JSON beside a panoptic one: ``panoptic_val.json`` -> ``instances_val.json``."""
    folder, name = osp.split(panoptic_ann)
    return osp.join(folder, name.replace('panoptic', 'instances') if 'panoptic' in name else 'instances_' + name)


def fill_evaluator_files(cfg) -> None:
    """Evaluator ``ann_file`` / ``seg_prefix`` left out or None take the val / test dataset's files."""
    for split in ('val', 'test'):
        datasets = [d for s, _, d in split_datasets(cfg) if s == split]
        if not datasets:
            continue
        dataset = datasets[0]
        kind = dataset_kind(dataset, scope_of(cfg))
        for metric in evaluators(cfg, split):
            name = _type_name(metric.get('type'))
            if name in PANOPTIC_METRICS and kind == 'panoptic':
                if metric.get('ann_file') is None:
                    metric['ann_file'] = ann_path(dataset)
                if metric.get('seg_prefix') is None:
                    metric['seg_prefix'] = prefix_path(dataset, 'seg')
            elif name in INSTANCE_METRICS and metric.get('ann_file') is None and kind in ('panoptic', 'instance'):
                path = ann_path(dataset)
                metric['ann_file'] = instances_file_for(path) if kind == 'panoptic' else path


def check_evaluator_classes(cfg, classes: Optional[DatasetClasses]) -> None:
    """An evaluator's annotation file must know every class of the dataset (else PQ / AP cannot map them).

    Raises:
        M2FConfigError: naming the evaluator key, its file and the classes it lacks.
    """
    if classes is None:
        return
    for split in ('val', 'test'):
        for index, metric in enumerate(evaluators(cfg, split)):
            name = _type_name(metric.get('type'))
            path = metric.get('ann_file')
            if name not in PANOPTIC_METRICS + INSTANCE_METRICS or not path or not osp.isfile(path):
                continue
            known = {c['name'] for c in read_categories(path)}
            wanted = classes.classes if name in PANOPTIC_METRICS else (classes.thing_classes or classes.classes)
            missing = [n for n in wanted if n not in known]
            if missing:
                raise M2FConfigError(
                    f'{split}_evaluator[{index}] ({name}).ann_file {path} lacks the classes {missing[:5]} of the '
                    f'dataset ({classes.source}). Fix: leave the evaluator\'s ann_file out (it then takes the '
                    f'{split} dataset\'s file) or point it at the annotation file of the same dataset')


# -- files ------------------------------------------------------------------------------------------

def missing_files(cfg, splits: Sequence[str]) -> List[str]:
    """One line per file or folder the given splits read that does not exist, naming the key and the fix."""
    problems = []
    for split, key, dataset in split_datasets(cfg):
        if split not in splits:
            continue
        root = dataset.get('data_root')
        if root and '://' not in root and not osp.isdir(root):
            problems.append(f'{key}.data_root {root} is not a folder. Fix: set data_root to the folder that holds '
                            'your images and annotations (docs/custom_dataset.md)')
            continue
        path = ann_path(dataset)
        if path and '://' not in path and not osp.exists(path):
            problems.append(f'{key}.ann_file {path} does not exist. Fix: set {key}.ann_file, relative to data_root '
                            f'({root}), to your annotation file')
        for name, folder in (dataset.get('data_prefix') or {}).items():
            full = joined(root, folder)
            if full and '://' not in full and not osp.isdir(full):
                problems.append(f'{key}.data_prefix.{name} {full} is not a folder. Fix: set {key}.data_prefix.{name}, '
                                f'relative to data_root ({root})')
    for split in splits:
        if split == 'train':
            continue
        datasets = [d for s, _, d in split_datasets(cfg) if s == split]
        panoptic = ann_path(datasets[0]) if datasets and dataset_kind(datasets[0], scope_of(cfg)) == 'panoptic' \
            else None
        for index, metric in enumerate(evaluators(cfg, split)):
            for field_name in ('ann_file', 'seg_prefix'):
                path = metric.get(field_name)
                if not path or '://' in str(path) or osp.exists(path):
                    continue
                if _type_name(metric.get('type')) in INSTANCE_METRICS:
                    fix = (f'write it from the panoptic annotation with python tools/dataset_converters/'
                           f'panoptic_to_instances.py {panoptic or "PANOPTIC_JSON"}, or drop CocoMetric from '
                           f'{split}_evaluator')
                else:
                    fix = f'leave {field_name} out to take the {split} dataset\'s'
                problems.append(f'{split}_evaluator[{index}].{field_name} {path} does not exist. Fix: {fix}')
    return problems
