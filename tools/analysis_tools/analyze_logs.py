"""Training curves and iteration times from mmengine's logs (``WORK_DIR/*/vis_data/scalars.json``).

    python tools/analysis_tools/analyze_logs.py plot_curve WORK_DIR [WORK_DIR ...] [--keys loss loss_mask]
        [--metric-keys coco_panoptic/PQ mIoU] [--out curves.png] [--title TITLE]
    python tools/analysis_tools/analyze_logs.py cal_train_time WORK_DIR [WORK_DIR ...]

Like mmdet's analyze_logs.py, for mmengine's scalar logs (mmdet / mmseg configs alike): a WORK_DIR
is a training work dir or one scalars.json file; several are drawn into one picture per run
(``--out`` gets ``_RUN`` inserted when there are several).
"""
import argparse
import os.path as osp
import sys

import numpy as np

from m2f_mm.visualization.curves import plot_curves, read_scalars


def train_times(records):
    """-> seconds per training iteration of every train record that logged ``time``."""
    return np.array([r['time'] for r in records if 'iter' in r and 'time' in r], np.float64)


def plot_curve(args) -> int:
    for index, work_dir in enumerate(args.work_dirs):
        out = args.out
        if len(args.work_dirs) > 1:
            stem, ext = osp.splitext(args.out)
            out = f'{stem}_{index}{ext}'
        counts = plot_curves(read_scalars(work_dir), out, args.keys, args.metric_keys,
                             args.title or osp.basename(osp.normpath(work_dir)))
        found = ', '.join(f'{k}: {n} points' for k, n in counts.items())
        print(f'{work_dir} -> {out} ({found})')
        if not any(counts.values()):
            print(f'analyze_logs: none of {args.keys + args.metric_keys} is in {work_dir}', file=sys.stderr)
            return 1
    return 0


def cal_train_time(args) -> int:
    for work_dir in args.work_dirs:
        times = train_times(read_scalars(work_dir))
        if len(times) == 0:
            print(f'analyze_logs: no training iteration with a time in {work_dir}', file=sys.stderr)
            return 1
        print(f'{work_dir}: {len(times)} logged iterations, {times.mean():.3f} s/iter on average '
              f'(median {np.median(times):.3f}, slowest {times.max():.3f}, fastest {times.min():.3f})')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True, help='what to compute')
    plot = sub.add_parser('plot_curve', help='draw loss and validation metric curves',
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    plot.add_argument('work_dirs', nargs='+', help='training work dirs or scalars.json files')
    plot.add_argument('--keys', nargs='+', default=['loss'], help='training scalars (left axis, log scale)')
    plot.add_argument('--metric-keys', nargs='+', default=['coco_panoptic/PQ'],
                      help='validation metrics in percent (right axis), e.g. mIoU for mmseg configs')
    plot.add_argument('--out', default='curves.png', help='the picture to write')
    plot.add_argument('--title', default='', help='picture title (default: the work dir name)')
    timing = sub.add_parser('cal_train_time', help='seconds per training iteration')
    timing.add_argument('work_dirs', nargs='+', help='training work dirs or scalars.json files')
    args = parser.parse_args(argv)
    try:
        return plot_curve(args) if args.command == 'plot_curve' else cal_train_time(args)
    except FileNotFoundError as err:
        print(f'analyze_logs: {err}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    from m2f_mm.errors import run_main
    run_main(main)
