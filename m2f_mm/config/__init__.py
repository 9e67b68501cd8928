"""Configs resolved before anything is built: one setting per fact, every mistake named up front.

``resolve_config(cfg, purpose)`` is what every entry point runs on a config before it builds a model
or a dataset (``M2FRunner.from_cfg``, so ``tools/train.py``, ``tools/test.py``, mmdet's / mmseg's
tools and ``mim``; ``m2f_mm.apis.init_model``; ``check_dataset.py``, ``browse_dataset.py``,
``image_demo.py``). In place, it

1. gives every dataset without its own ``data_root`` the config's ``data_root`` (:mod:`.data`);
2. reads the dataset's classes once (annotation JSON ``categories``, a classes file, ``metainfo``, a
   checkpoint's ``dataset_meta`` for inference; :mod:`.classes`) and fills every dataloader's
   ``metainfo`` and the model's class counts with them; a count or class list the config sets that
   the data contradicts stops here, naming the file, the key and the fix;
3. derives the evaluators' annotation files from the val / test datasets;
4. turns schedule fractions into iterations (:mod:`.schedule`).

So a leaf config for a new dataset in the COCO panoptic layout is::

    _base_ = ['m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
    data_root = 'data/my_dataset/'
"""
from dataclasses import dataclass
from typing import List, Optional

from ..errors import M2FConfigError
from .classes import DatasetClasses
from .data import (SPLITS, check_evaluator_classes, discover_classes, fill_class_counts, fill_data_roots,
                   fill_evaluator_files, fill_metainfo, missing_files)
from .schedule import resolve_schedule

PURPOSES = ('train', 'test', 'inference', 'data')


@dataclass
class Resolution:
    """What :func:`resolve_config` decided, for the log."""
    classes: Optional[DatasetClasses]
    schedule: Optional[str]

    def lines(self) -> List[str]:
        out = []
        if self.classes is not None:
            c = self.classes
            things = f'{len(c.thing_classes)} thing' + ('s' if len(c.thing_classes) != 1 else '') \
                if c.thing_classes is not None else ''
            split = (f' ({things}: {_few(c.thing_classes)}; {len(c.stuff_classes)} stuff: '
                     f'{_few(c.stuff_classes)})' if c.thing_classes is not None and c.stuff_classes else '')
            out.append(f'classes: {len(c.classes)}{split or " (" + _few(c.classes) + ")"} from {c.source}')
        if self.schedule:
            out.append(self.schedule)
        return out


def _few(names, shown: int = 6) -> str:
    names = list(names)
    return ', '.join(names[:shown]) + (f', ... (+{len(names) - shown})' if len(names) > shown else '')


def classes_from_meta(meta: dict, source: str) -> DatasetClasses:
    """A checkpoint's ``meta.dataset_meta`` (what mmengine's runner saves) as :class:`DatasetClasses`."""
    from ..utils.palette import distinct_palette
    classes = tuple(meta['classes'])
    palette = [tuple(c) for c in (meta.get('palette') or [])]
    if len(palette) != len(classes):
        palette = distinct_palette(len(classes))
    things, stuff = meta.get('thing_classes'), meta.get('stuff_classes')
    return DatasetClasses(classes, None if things is None else tuple(things), None if stuff is None else tuple(stuff),
                          palette, source)


def resolve_config(cfg, purpose: str = 'train', dataset_meta: Optional[dict] = None,
                   meta_source: str = 'the checkpoint') -> Resolution:
    """Resolve ``cfg`` in place (module docstring).

    Args:
        cfg: an mmengine ``Config`` (after ``--cfg-options``).
        purpose: 'train' (classes from the train split first), 'test' (the test split first), 'data'
            (the dataset tools and print_config: class counts filled only when the classes can be told)
            or 'inference' (no data needed; ``dataset_meta`` gives the classes).
        dataset_meta: a checkpoint's ``meta.dataset_meta``: the classes the model was trained on.

    Raises:
        M2FConfigError: one line naming the file, the key and the fix.
    """
    if purpose not in PURPOSES:
        raise M2FConfigError(f'purpose must be one of {PURPOSES}, got {purpose!r}')
    fill_data_roots(cfg)
    if dataset_meta and dataset_meta.get('classes'):
        classes = classes_from_meta(dataset_meta, meta_source)
    elif purpose == 'inference':
        classes = _discover_quietly(cfg)
    else:
        order = ('test', 'val', 'train') if purpose == 'test' else SPLITS
        classes = discover_classes(cfg, order)
    if classes is not None:
        fill_metainfo(cfg, classes)
    if purpose != 'data' or classes is not None:  # the dataset tools need no model
        fill_class_counts(cfg, classes, ' (the classes the model was trained on)' if dataset_meta else '')
    fill_evaluator_files(cfg)
    if purpose in ('train', 'test'):
        check_evaluator_classes(cfg, classes)
    schedule = resolve_schedule(cfg)
    return Resolution(classes, schedule)


def _discover_quietly(cfg) -> Optional[DatasetClasses]:
    """For inference without a checkpoint's classes: the config's, if its files can tell them."""
    try:
        return discover_classes(cfg, ('test', 'val', 'train'))
    except M2FConfigError:
        return None


def check_data_files(cfg, splits) -> None:
    """Stop before anything is built when a file or folder the given splits read is missing.

    Raises:
        M2FConfigError: the first missing file, naming its config key and the fix (and how many more).
    """
    problems = missing_files(cfg, splits)
    if problems:
        more = f' ({len(problems) - 1} more problem(s) of this kind)' if len(problems) > 1 else ''
        raise M2FConfigError(problems[0] + more)




def load_resolved(config, cfg_options: Optional[dict] = None, purpose: str = 'inference',
                  dataset_meta: Optional[dict] = None):
    """``Config.fromfile(config)`` (or a copy of a Config), ``cfg_options`` merged, then :func:`resolve_config`:
    the config the tools build models from."""
    import copy

    from mmengine.config import Config
    cfg = copy.deepcopy(config) if isinstance(config, Config) else Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    resolve_config(cfg, purpose, dataset_meta)
    return cfg


__all__ = ['resolve_config', 'load_resolved', 'check_data_files', 'classes_from_meta', 'Resolution', 'DatasetClasses']
