"""The main job, end to end on CPU: make the synthetic data, train Mask2Former, evaluate, draw.

    python tools/demo/run_demo.py                       # README's first command (via `make demo`)
    python tools/demo/run_demo.py --ablations --reuse   # + the paper's ablations side by side (`make ablations`)
    python tools/demo/run_demo.py --baseline mmdet --reuse  # + mmdet 3.3.0's own Mask2Former on the same data
    python tools/demo/run_demo.py --quick [...]         # a few iterations on a handful of images (the test suite)

Steps, each a real tool a user would also run by hand:
    tools/dataset_converters/make_synthetic_data.py -> tools/train.py -> tools/test.py -> tools/demo/demo_report.py
Outputs land in ``--out`` (default ``outputs/demo``): curves.png, overlays.png, results.md; with
--ablations ablations.md / .png / .json, with --baseline baseline.md / .png / .json.

--ablations trains each switch of tools/demo/_ablations.py (VARIANTS) with the same data and schedule:
masked attention on and off with every --seeds seed, the others with the first seed. An ablation run
is scored by the validation at its last iteration (the same data and metrics as tools/test.py).
Peak memory is the training process's peak resident set size (ru_maxrss; on CUDA, mmengine's logged
peak allocation). --reuse skips runs whose work dir already holds metrics.json; --finished-only trains
nothing and writes the tables from the runs that have finished (e.g. while others are still training).
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tools/demo: _ablations, _mmdet_baseline
import _ablations as abl  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/m2f_r18-q24_1xb8-2k_synthetic-panoptic.py'


def run(cmd: List[str], env: Dict[str, str] = None) -> float:
    """Run ``cmd`` in the repository; raise if it fails; return its peak RSS in MB (Linux ru_maxrss, KiB)."""
    print('\n$ ' + ' '.join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage (max over it and its workers)
    proc.returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return usage.ru_maxrss / 1024


def latest_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics dict that mmengine's test loop wrote last under ``work_dir/<timestamp>/<timestamp>.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    if not files:
        raise FileNotFoundError(f'no metrics JSON under {work_dir}: did tools/test.py run?')
    with open(files[-1]) as f:
        return json.load(f)


def training_log(work_dir: str) -> Dict[str, float]:
    """From the run's scalars.json: the last validation metrics, median s/iter, peak CUDA memory (MB)."""
    from m2f_mm.visualization.curves import read_scalars
    records = read_scalars(work_dir)
    vals = [r for r in records if 'iter' not in r and any(k.startswith('coco_panoptic/') for k in r)]
    times = [r['time'] for r in records if 'iter' in r and 'time' in r]
    out = {k: v for k, v in (vals[-1] if vals else {}).items() if k != 'step'}
    if times:
        out['sec_per_iter'] = statistics.median(times)
    memory = [r['memory'] for r in records if 'memory' in r]  # mmengine logs it on CUDA only
    if memory:
        out['peak_cuda_mb'] = max(memory)
    return out


def train_and_score(name: str, config: str, args, extra: List[str], *, test: bool = True,
                    env: Dict[str, str] = None) -> Optional[Dict[str, float]]:
    """Train ``config`` in ``work_root/name``; score it with tools/test.py (``test``) or by its last
    validation; cache the result in metrics.json (``--reuse`` reads it back)."""
    py = sys.executable
    work_dir = osp.join(args.work_root, name)
    done_file = osp.join(REPO, work_dir, 'metrics.json')
    if (args.reuse or args.finished_only) and osp.exists(done_file):
        print(f'reusing the finished run in {work_dir} (--reuse)')
        with open(done_file) as f:
            return json.load(f)
    if args.finished_only:
        print(f'not run: {work_dir} has no metrics.json (--finished-only trains nothing)')
        return None
    start = time.perf_counter()
    peak = run([py, 'tools/train.py', config, '--work-dir', work_dir] + extra, env=env)
    train_minutes = (time.perf_counter() - start) / 60
    with open(osp.join(REPO, work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    log = training_log(osp.join(REPO, work_dir))
    if test:
        test_dir = osp.join(work_dir, 'test')
        run([py, 'tools/test.py', config, checkpoint, '--work-dir', test_dir] + extra, env=env)
        metrics = dict(log, **latest_metrics(osp.join(REPO, test_dir)))
    else:
        metrics = log
    metrics.update(train_minutes=train_minutes, peak_rss_mb=peak, checkpoint=checkpoint, work_dir=work_dir,
                   config=config)
    with open(done_file, 'w') as f:
        json.dump(metrics, f, indent=1)
    return metrics


def variant_config(name: str, overrides: dict, seed: int, args, imports=()) -> str:
    """Write the leaf config of one run (``work_root/configs/NAME.py``) and return its path."""
    path = abl.config_path(osp.join(REPO, args.work_root), name)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(abl.leaf_config(osp.join(REPO, args.config), overrides, seed, imports))
    return path


def run_ablations(args, extra: List[str]) -> Dict[str, List[Dict]]:
    groups = {}
    for variant, (_, _, overrides, _) in abl.VARIANTS.items():
        if variant not in args.variants:
            continue
        groups[variant] = []
        for seed in abl.seeds_of(variant, args.seeds):
            name = abl.run_name(variant, seed)
            config = variant_config(name, overrides, seed, args)
            _add_run(groups[variant], train_and_score(name, config, args, extra, test=False), seed)
    return groups


def _add_run(runs: List[Dict], result: Optional[Dict], seed: int) -> None:
    """Append a finished run's results tagged with its seed (the per-seed table pairs runs by it)."""
    if result is not None:
        runs.append(dict(result, seed=seed))


def run_baseline(args, extra: List[str]) -> Dict[str, List[Dict]]:

    from _mmdet_baseline import mmdet_model
    from m2f_mm.config import load_resolved
    model = mmdet_model(load_resolved(osp.join(REPO, args.config)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [osp.join(REPO, 'tools', 'demo')] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    groups = {'masked': [], abl.MMDET: []}
    for seed in args.seeds:
        name = abl.run_name('masked', seed)
        config = variant_config(name, {}, seed, args)
        _add_run(groups['masked'], train_and_score(name, config, args, extra, test=False), seed)
        name = abl.run_name(abl.MMDET, seed)
        config = variant_config(name, dict(model=dict(model, _delete_=True)), seed, args, imports=['_mmdet_baseline'])
        _add_run(groups[abl.MMDET], train_and_score(name, config, args, extra, test=False, env=env), seed)
    return groups


def write_report(stem: str, groups: Dict[str, List[Dict]], table: str) -> None:
    """``stem``.md (the tables) and ``stem``.json (every run's results, by group)."""
    with open(osp.join(REPO, stem + '.md'), 'w') as f:
        f.write(table)
    with open(osp.join(REPO, stem + '.json'), 'w') as f:
        json.dump(groups, f, indent=1)
    print(table)
    print(f'wrote {stem}.md, {stem}.json')


def default_folders(quick: bool) -> Dict[str, str]:
    """Where data, pictures and runs go by default: a quick run has folders of its own, so that it never
    leaves its handful of images or its 4-iteration run where the real job would pick them up."""
    suffix = '-quick' if quick else ''
    return dict(data=f'data/synthetic{suffix}', out=f'outputs/demo{suffix}', work_root=f'work_dirs/demo{suffix}')


def data_settings(quick: bool) -> Dict[str, object]:
    """The generator's arguments for this run (``meta.json`` records them as ``args``)."""
    from m2f_mm.datasets.synthetic import DEFAULT_NUM_TRAIN, DEFAULT_NUM_VAL, DEFAULT_SIZE
    if quick:
        return dict(num_train=6, num_val=3, size=[96, 96], seed=0)
    return dict(num_train=DEFAULT_NUM_TRAIN, num_val=DEFAULT_NUM_VAL, size=list(DEFAULT_SIZE), seed=0)


def regenerate_reason(meta_path: str, settings: Dict[str, object]) -> Optional[str]:
    """Why the data at ``meta_path``'s folder cannot be reused for a run with ``settings`` (None: it can)."""
    try:
        with open(meta_path) as f:
            recorded = json.load(f).get('args')
    except FileNotFoundError:
        return 'no synthetic set there yet'
    except (OSError, ValueError, AttributeError):
        return 'its meta.json is unreadable'
    if recorded != settings:
        return f'written with other settings ({recorded}, this run needs {settings})'
    return None


def model_label(config: str) -> str:
    """The run's name in the report: which model the config trains."""
    from mmengine.config import Config
    head = Config.fromfile(osp.join(REPO, config)).model.get('panoptic_head', {}).get('type', '')
    return 'MaskFormer' if 'MaskFormer' in str(head) else 'masked attention (paper)'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=CONFIG, help=f'the config to train (default: {CONFIG})')
    parser.add_argument('--data', help='synthetic dataset folder; generated unless it holds a set written with this '
                        'run\'s settings (default: data/synthetic, with --quick data/synthetic-quick)')
    parser.add_argument('--out', help='where curves.png, overlays.png, results.md go (default: outputs/demo, with '
                        '--quick outputs/demo-quick)')
    parser.add_argument('--work-root', help='training / test work dirs, one per run (default: work_dirs/demo, with '
                        '--quick work_dirs/demo-quick)')
    parser.add_argument('--ablations', '--ablation', action='store_true',
                        help="train the paper's ablation switches side by side (tools/demo/_ablations.py)")
    parser.add_argument('--baseline', choices=['mmdet'],
                        help="also train mmdet 3.3.0's own Mask2Former with the same data, schedule and seeds")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='seeds of the main comparison (masked attention on / off) and of the baseline '
                             '(default: 0 1 2); the other ablations use the first')
    parser.add_argument('--variants', nargs='+', choices=list(abl.VARIANTS), default=list(abl.VARIANTS),
                        metavar='NAME', help='the ablation runs to train (default: all of '
                        f'{", ".join(abl.VARIANTS)}); with --reuse, a later run with all of them assembles the table')
    parser.add_argument('--quick', action='store_true', help='a few iterations on a handful of images')
    parser.add_argument('--reuse', action='store_true', help='reuse runs already trained and scored in --work-root')
    parser.add_argument('--finished-only', action='store_true',
                        help='train nothing: assemble the tables and curves from the runs already finished in '
                             '--work-root; the others are listed as not run')
    args = parser.parse_args()
    for key, value in default_folders(args.quick).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        parser.error(f'--seeds must be distinct non-negative integers, got {args.seeds}')
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
        extra += ['train_cfg.max_iters=4', 'train_cfg.val_interval=2', 'default_hooks.logger.interval=1',
                  'log_processor.window_size=1', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                  'train_dataloader.persistent_workers=False', 'default_hooks.checkpoint.interval=4',
                  'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0']
    settings = data_settings(args.quick)
    reason = regenerate_reason(osp.join(REPO, args.data, 'meta.json'), settings)
    if reason:
        print(f'{args.data}: {reason}; generating it')
        run([py, 'tools/dataset_converters/make_synthetic_data.py', '--out', args.data,
             '--num-train', str(settings['num_train']), '--num-val', str(settings['num_val']),
             '--size', *[str(v) for v in settings['size']], '--seed', str(settings['seed'])])
    else:
        print(f'using the existing synthetic data in {args.data} (written with these settings)')

    if args.ablations or args.baseline:
        from m2f_mm.visualization.curves import plot_run_groups
        labels = {name: spec[0] for name, spec in abl.VARIANTS.items()}
        labels.update(masked='m2f_mm Mask2Former', mmdet="mmdet 3.3.0's Mask2Former")
        if args.ablations:
            groups = run_ablations(args, extra)
            plot_run_groups(abl.curve_groups(groups, {n: s[0] for n, s in abl.VARIANTS.items()}),
                            osp.join(REPO, args.out, 'ablations.png'), title='ablations (mean over seeds)')
            write_report(osp.join(args.out, 'ablations'), groups,
                         abl.ablation_table(groups) + '\n' + abl.seed_table(groups, args.seeds, abl.MAIN_PAIR))
        if args.baseline:
            groups = run_baseline(args, extra)
            plot_run_groups(abl.curve_groups(groups, labels), osp.join(REPO, args.out, 'baseline.png'),
                            title="m2f_mm vs mmdet's Mask2Former (same data, schedule, seeds)")
            write_report(osp.join(args.out, 'baseline'), groups,
                         abl.baseline_table(groups['masked'], groups[abl.MMDET]) + '\n'
                         + abl.seed_table(groups, args.seeds, ('masked', abl.MMDET)))
        return

    label = model_label(args.config)
    runs = {label: train_and_score('masked', args.config, args, extra)}
    first = runs[label]
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
