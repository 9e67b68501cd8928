"""Evaluate a checkpoint (the flags of mmdet's / mmseg's tools/test.py): PQ / mask AP / mIoU.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out OUT] [--show-dir DIR] [--tta] [--partial-load]

The checkpoint must fit the model: a tensor of another shape, a model key it leaves unfilled or an
unexpected head key stops the tool (status 1) with the keys, shapes and fix; --partial-load opts out.

The flags mean what they mean in the library the config belongs to (its ``default_scope``):
    --out       mmdet configs: a .pkl file of all predictions; mmseg configs: a folder of predicted
                label PNGs (IoUMetric's output_dir, for offline evaluation)
    --show-dir  mmdet: painted images in WORK_DIR/TIMESTAMP/DIR; mmseg: the visualizer's save_dir DIR
    --tta       mmseg configs: the config's tta_pipeline (flips x scales) merged by its tta_model
                (mmseg's SegTTAModel); mmdet configs have no mask TTA and refuse it
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tools/ for _env_guard: not on the path under runpy (tests)
import _env_guard  # noqa: E402,F401  (must come first: checks mmcv, registers m2f_mm)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) an m2f_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', type=str,
                        help='mmdet configs: dump predictions to a pickle file (.pkl); mmseg configs: a '
                             'folder where the predicted label PNGs are written')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir',
                        help='where painted images are saved: mmdet configs, a folder under WORK_DIR/TIMESTAMP; '
                             'mmseg configs, the folder itself')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation (mmseg configs): the config's tta_pipeline and tta_model")
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--partial-load', action='store_true',
                        help='evaluate even if the checkpoint does not fit (what stayed at initialisation is '
                             'listed); the config key is partial_load = True')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.test_cfg.semantic_on=True')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (tools/dist_test.sh sets pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='set by the launcher (LOCAL_RANK)')
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def is_mmseg(cfg: Config) -> bool:
    return cfg.get('default_scope', 'mmdet') == 'mmseg'


def apply_show_args(cfg: Config, args) -> None:
    """--show / --show-dir into the visualization hook (mmdet: test_out_dir; mmseg: the visualizer's save_dir)."""
    if not (args.show or args.show_dir):
        return
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError('--show/--show-dir need default_hooks.visualization in the config')
    hooks.visualization.draw = True
    if args.show:
        hooks.visualization.show = True
        hooks.visualization.wait_time = args.wait_time
    if args.show_dir:
        if is_mmseg(cfg):  # mmseg's SegVisualizationHook has no test_out_dir
            cfg.visualizer.save_dir = args.show_dir
        else:
            hooks.visualization.test_out_dir = args.show_dir


def apply_out_arg(cfg: Config, args) -> Optional[str]:
    """mmseg: --out DIR becomes IoUMetric's output_dir. mmdet: returns the .pkl path to dump to."""
    if args.out is None:
        return None
    if is_mmseg(cfg):
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        iou = [e for e in evaluators if e.get('type') == 'IoUMetric']
        if not iou:
            raise ValueError('--out DIR (mmseg) writes through IoUMetric, and test_evaluator has none')
        for evaluator in iou:
            evaluator.output_dir = args.out
            evaluator.keep_results = True
        return None
    if not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must name a .pkl/.pickle file for mmdet configs, got {args.out!r}')
    return args.out


def apply_tta(cfg: Config) -> None:
    """Wrap the model in the config's tta_model and test on its tta_pipeline (mmseg configs only)."""
    if not is_mmseg(cfg):
        raise ValueError('--tta works with the mmseg (semantic) configs; mmdet\'s DetTTAModel merges boxes only, '
                         'and M2FDetector has no panoptic / instance mask merging')
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise ValueError(f'--tta needs {" and ".join(missing)} in the config (mmseg\'s default_runtime.py and '
                         'dataset configs define them)')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    cfg.setdefault('runner_type', 'M2FRunner')
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    from m2f_mm.config import resolve_config
    resolve_config(cfg, 'test')  # classes from the test data first; a config the data contradicts stops here
    if args.partial_load:
        cfg.partial_load = True
    try:
        apply_show_args(cfg, args)
        dump_file = apply_out_arg(cfg, args)
        if args.tta:
            apply_tta(cfg)
    except (ValueError, RuntimeError) as err:
        print(f'test.py: {err}', file=sys.stderr)
        sys.exit(2)
    runner = RUNNERS.build(cfg)  # runner_type is always set above (M2FRunner unless the config names another)
    if dump_file is not None:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=dump_file))
    runner.test()


if __name__ == '__main__':
    _env_guard.run_tool(main)
