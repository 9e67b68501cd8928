"""Check every sample of a config's datasets through the real loading code, before training.

    python tools/misc/check_dataset.py CONFIG [--split train val test] [--workers N] [--out problems.json]

Lists every problem with its file, image id, what is wrong and how to fix it (missing or truncated
images, panoptic PNGs that disagree with their JSON, unknown categories, labels outside the
classes, repeated image or segment ids, ids of the wrong type, images whose decoded size differs
from their annotation or label PNG, paths that leave the data folder), does not stop at the first,
ends with a count per kind of problem, and exits with status 1 when anything is wrong (0 when all
is well).
"""
import argparse
import json
import multiprocessing
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402,F401  (must come first: checks mmcv, registers m2f_mm)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

from m2f_mm.datasets.check import Problem, as_dicts, check_indices, summary  # noqa: E402

_DATASET = None  # the split being checked, inherited by forked workers


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the training config whose datasets to check')
    parser.add_argument('--split', nargs='+', choices=['train', 'val', 'test'], default=['train', 'val'],
                        help='which dataloaders of the config to check (default: train val)')
    parser.add_argument('--workers', type=int, default=0, help='worker processes (0: this process)')
    parser.add_argument('--out', help='also write the problems to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_dataloader.dataset.data_root=data/coco/')
    return parser.parse_args(argv)


def build_dataset(dataset_cfg: dict, split: str):
    """The split's dataset, parsed with per-image annotation problems collected where supported."""
    from m2f_mm.engine.runner import _accepts
    from m2f_mm.registry import DATASETS
    cfg = dict(dataset_cfg, lazy_init=True)
    if _accepts(cfg.get('type'), 'bad_annotations'):
        cfg['bad_annotations'] = 'collect'
    dataset = DATASETS.build(cfg)
    dataset.full_init()
    return dataset, [Problem(split, p['file'], p['img_id'], p.get('kind', 'unknown category'), p['problem'])
                     for p in getattr(dataset, 'annotation_problems', [])]


def _check_chunk(args):
    indices, split, num_classes = args
    return check_indices(_DATASET, indices, split, num_classes)


def check_split(dataset, split: str, workers: int) -> list:
    global _DATASET
    _DATASET = dataset
    num_classes = len(dataset.metainfo['classes'])
    indices = list(range(len(dataset)))
    bar = ProgressBar(len(indices), file=sys.stderr)
    if workers <= 0:
        return check_indices(dataset, indices, split, num_classes, progress=bar.update)
    chunks = [(indices[i:i + 16], split, num_classes) for i in range(0, len(indices), 16)]
    found = []
    import torch
    # forked workers must not enter the parent's OpenMP pool (they would hang): torch loops inline
    with multiprocessing.get_context('fork').Pool(workers, initializer=torch.set_num_threads, initargs=(1, )) as pool:
        for (chunk, _, _), problems in zip(chunks, pool.imap(_check_chunk, chunks)):
            found += problems
            for _ in chunk:
                bar.update()
    return found


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from m2f_mm.config import resolve_config
    resolve_config(cfg, 'data')  # data_root into every split, classes from the annotation files
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    problems, total = [], 0
    for split in args.split:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            print(f'{split}: the config has no {split}_dataloader; skipped', file=sys.stderr)
            continue
        try:
            dataset, found = build_dataset(loader['dataset'], split)
        except Exception as err:  # noqa: BLE001  an unreadable annotation file is one problem, not a crash
            problems.append(Problem(split, str(loader['dataset'].get('ann_file', '?')), '-', 'loading failed',
                                    f'the dataset could not be built: {type(err).__name__}: {err}'))
            continue
        print(f'{split}: checking {len(dataset)} samples', file=sys.stderr)
        found += check_split(dataset, split, args.workers)
        print(file=sys.stderr)
        total += len(dataset) + len(getattr(dataset, 'annotation_problems', []))  # left-out images too
        problems += found
    for problem in problems:
        print(problem)
    print(summary(problems, total))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(as_dicts(problems), f, indent=1, default=str)
    return 1 if problems else 0


if __name__ == '__main__':
    _env_guard.run_tool(main)
