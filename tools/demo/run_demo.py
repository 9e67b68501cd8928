"""The main job, end to end on CPU: make the synthetic data, train Mask2Former, evaluate, draw.

    python tools/demo/run_demo.py                  # README's first command (via `make demo`)
    python tools/demo/run_demo.py --ablation       # + the same run without masked attention, side by side
    python tools/demo/run_demo.py --quick          # a few iterations on a handful of images (the test suite)

Steps, each a real tool a user would also run by hand:
    tools/dataset_converters/make_synthetic_data.py -> tools/train.py -> tools/test.py -> tools/demo/demo_report.py
Outputs land in ``--out`` (default ``outputs/demo``): curves.png, overlays.png, results.md.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/m2f_r18-q24_1xb8-3k_synthetic-panoptic.py'


def run(cmd: List[str]) -> None:
    print('\n$ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def latest_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics dict that mmengine's test loop wrote last under ``work_dir/<timestamp>/<timestamp>.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    if not files:
        raise FileNotFoundError(f'no metrics JSON under {work_dir}: did tools/test.py run?')
    with open(files[-1]) as f:
        return json.load(f)


def train_and_test(name: str, config: str, args, extra: List[str]) -> Dict[str, float]:
    py = sys.executable
    work_dir = osp.join(args.work_root, name)
    done_file = osp.join(REPO, work_dir, 'metrics.json')
    if args.reuse and osp.exists(done_file):
        print(f'reusing the finished run in {work_dir} (--reuse)')
        with open(done_file) as f:
            return json.load(f)
    start = time.perf_counter()
    run([py, 'tools/train.py', config, '--work-dir', work_dir] + extra)
    train_minutes = (time.perf_counter() - start) / 60
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    test_dir = osp.join(work_dir, 'test')
    run([py, 'tools/test.py', config, checkpoint, '--work-dir', test_dir] + extra)
    metrics = latest_metrics(test_dir)
    metrics['train_minutes'] = train_minutes
    metrics['checkpoint'] = checkpoint
    metrics['work_dir'] = work_dir
    with open(done_file, 'w') as f:
        json.dump(metrics, f, indent=1)
    return metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=CONFIG, help=f'the config to train (default: {CONFIG})')
    parser.add_argument('--data', default='data/synthetic',
                        help='synthetic dataset folder; generated when it has no meta.json (default: data/synthetic)')
    parser.add_argument('--out', default='outputs/demo',
                        help='where curves.png, overlays.png, results.md go (default: outputs/demo)')
    parser.add_argument('--work-root', default='work_dirs/demo',
                        help='training / test work dirs, one per run (default: work_dirs/demo)')
    parser.add_argument('--ablation', action='store_true', help='also train without masked attention')
    parser.add_argument('--quick', action='store_true', help='a few iterations on a handful of images')
    parser.add_argument('--reuse', action='store_true', help='reuse runs already trained and tested in --work-root')
    args = parser.parse_args()
    py = sys.executable
    os.makedirs(osp.join(REPO, args.out), exist_ok=True)

    extra = ['--cfg-options', f'data_root={args.data}/',
             f'train_dataloader.dataset.data_root={args.data}/', f'val_dataloader.dataset.data_root={args.data}/',
             f'test_dataloader.dataset.data_root={args.data}/',
             f'val_evaluator.0.ann_file={args.data}/annotations/panoptic_val.json',
             f'val_evaluator.0.seg_prefix={args.data}/annotations/panoptic_val/',
             f'val_evaluator.1.ann_file={args.data}/annotations/instances_val.json',
             f'test_evaluator.0.ann_file={args.data}/annotations/panoptic_val.json',
             f'test_evaluator.0.seg_prefix={args.data}/annotations/panoptic_val/',
             f'test_evaluator.1.ann_file={args.data}/annotations/instances_val.json']
    if args.quick:
        extra += ['train_cfg.max_iters=6', 'train_cfg.val_interval=6', 'default_hooks.logger.interval=2',
                  'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                  'train_dataloader.persistent_workers=False',
                  'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0']
    gen = [py, 'tools/dataset_converters/make_synthetic_data.py', '--out', args.data]
    gen += ['--num-train', '6', '--num-val', '3'] if args.quick else []
    if not osp.exists(osp.join(REPO, args.data, 'meta.json')):
        run(gen)
    else:
        print(f'using the existing synthetic data in {args.data} (delete it to regenerate)')

    runs = {'masked attention (paper)': train_and_test('masked', args.config, args, extra)}
    if args.ablation:
        runs['no masked attention'] = train_and_test(
            'unmasked', args.config, args, extra + ['model.panoptic_head.transformer_decoder.use_masked_attention=False'])

    first = runs['masked attention (paper)']
    runs_file = osp.join(args.out, 'runs.json')
    with open(osp.join(REPO, runs_file), 'w') as f:
        json.dump(runs, f, indent=1)
    run([py, 'tools/demo/demo_report.py', args.config, first['checkpoint'], '--train-dir', first['work_dir'],
         '--runs-json', runs_file, '--out', args.out] + extra)
    for name, metrics in runs.items():
        print(f"{name}: PQ {metrics.get('coco_panoptic/PQ', float('nan')):.1f}, "
              f"trained {metrics['train_minutes']:.1f} min")


if __name__ == '__main__':
    main()
