"""Train an m2f_mm model with mmengine's runner (same flags as mmdet's tools/train.py).

    python tools/train.py CONFIG [--work-dir DIR] [--amp [--amp-dtype float16|bfloat16]] [--resume [CKPT]]
                          [--partial-load] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NUM_PROCESSES [...]

Runs with ``M2FRunner`` (m2f_mm/engine/runner.py) unless the config names another runner_type.
A bad sample, a non-finite loss, a checkpoint that does not fit or a launch that cannot work ends
the run with one message naming the fix and exit status 1.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tools/ for _env_guard: not on the path under runpy (tests)
import _env_guard  # noqa: E402,F401  (must come first: checks mmcv, registers m2f_mm)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Train an m2f_mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='enable automatic-mixed-precision training')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'],
                        help='autocast dtype for --amp (default: float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr with the batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir when no CKPT')
    parser.add_argument('--partial-load', action='store_true',
                        help='let load_from / --resume leave weights that do not fit at initialisation (listed in '
                             'the log) instead of stopping; the config key is partial_load = True')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.panoptic_head.num_queries=200')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (tools/dist_train.sh sets pytorch, tools/slurm_train.sh slurm)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='set by the launcher (LOCAL_RANK)')
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    cfg.setdefault('runner_type', 'M2FRunner')
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print('AMP training is already enabled in the config.')
        else:
            assert optim_wrapper == 'OptimWrapper', (
                f'--amp needs an OptimWrapper config, got {optim_wrapper}')
            import torch
            if torch.cuda.is_available():
                cfg.optim_wrapper.type = 'AmpOptimWrapper'
                cfg.optim_wrapper.loss_scale = 'dynamic'
                if args.amp_dtype:
                    cfg.optim_wrapper.dtype = args.amp_dtype
            else:  # mmengine's AmpOptimWrapper needs a GPU; ours autocasts on CPU too
                cfg.optim_wrapper.type = 'M2FAmpOptimWrapper'
                cfg.optim_wrapper.dtype = args.amp_dtype or 'bfloat16'
    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and 'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = dict(enable=..., base_batch_size=...)` '
                               'in the config')
    if args.partial_load:
        cfg.partial_load = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main():
    args = parse_args()
    cfg = build_cfg(args)
    runner = RUNNERS.build(cfg)  # runner_type is always set above (M2FRunner unless the config names another)
    runner.train()


if __name__ == '__main__':
    _env_guard.run_tool(main)
