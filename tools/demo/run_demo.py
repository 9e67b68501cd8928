"""The main job, end to end on CPU: make the synthetic data, train Mask2Former, evaluate, draw.

    python tools/demo/run_demo.py                       # README's first command (via `make demo`)
    python tools/demo/run_demo.py --ablations --reuse   # + the papers' ablations side by side (`make ablations`)
    python tools/demo/run_demo.py --baseline mmdet --reuse  # + mmdet 3.3.0's own Mask2Former on the same data
    python tools/demo/run_demo.py --quick [...]         # a few iterations on a handful of images (the test suite)

Steps, each a real tool a user would also run by hand:
    tools/dataset_converters/make_synthetic_data.py -> tools/train.py -> tools/test.py -> tools/demo/demo_report.py
Outputs land in ``--out`` (default ``outputs/demo``): curves.png, overlays.png, results.md; with
--ablations ablations.md / .json, ablations.png and semantic.png, with --baseline baseline.md / .png / .json.

--ablations trains every run of three tables with the same data and schedule, each with every --seeds
seed (--cfg-options randomness.seed=N), differences paired by seed: Mask2Former's ablations (VARIANTS: the
checked-in configs/ablations/*.py, one switch over the main-job config each, and MaskFormer's head),
per-pixel vs mask classification for semantic segmentation (SEMANTIC_VARIANTS: mmseg models on the same
images' label PNGs), and one model for three tasks (the main job's model trained for instances only, and the
semantic Mask2Former). --iters N trains them all for N iterations (the schedule follows in proportion), in
folders of their own; --record DIR keeps each finished run's metrics and log (a few KB) for --finished-only.
--baseline mmdet trains benchmarks/mmdet_baseline/ (mmdet's own Mask2Former with our model's sizes) the same
way. An ablation run is scored by the validation at its last iteration (the same data and metrics as
tools/test.py).
Peak memory is the training process's peak resident set size (ru_maxrss; on CUDA, mmengine's logged
peak allocation). --reuse skips runs whose work dir already holds metrics.json; --finished-only trains
nothing and writes the tables from the runs that have finished (e.g. while others are still training).
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/m2f_r18-q24_1xb8-2k_synthetic-panoptic.py'
BASELINE_CONFIG = 'benchmarks/mmdet_baseline/mmdet-mask2former_r18-q24_1xb8-2k_synthetic-panoptic.py'
# name -> its row (m2f_mm.visualization.run_report.Variant): label, the switch its config sets, the paper's PQ change (Mask2Former, CVPR 2022,
# ablations on COCO with R50). 'masked' trains CONFIG, the others configs/ablations/<CONFIG>_<name>.py.
VARIANTS = {
    'masked': ('Mask2Former (every component on)', '-', None),
    'unmasked': ('no masked attention', 'transformer_decoder.use_masked_attention=False', -4.8),
    'zero_queries': ('zero query features, set 0 not supervised', 'panoptic_head.learnable_query_features=False', -0.7),
    'single_level': ('single 1/32 feature level, no round-robin', 'transformer_decoder.feature_levels=[0]', -1.7),
    'full_mask': ('full-mask loss instead of sampled points', 'criterion.full_mask=True', '-1.6 at 3x memory'),
    'fpn_decoder': ('FPN pixel decoder instead of MSDeformAttn', "pixel_decoder.type='M2FFPNPixelDecoder'", -1.2),
    'semantic_fpn': ('Semantic FPN pixel decoder instead of MSDeformAttn',
                     "pixel_decoder.type='M2FSemanticFPNPixelDecoder'", -0.7),
    'self_first': ('self-attention before cross-attention', "layer_cfg.attention_order='self_first'", -0.3),
    'dropout': ('dropout 0.1 in the decoder', 'layer_cfg.dropout=0.1', -0.6),
    'three_off': ('zero query features + self-attention first + dropout', 'the three switches above', -1.1),
    'match_masks': ('matching on full masks, loss on points', "criterion.match_on='masks'", '-1.1, same memory'),
    'loss_masks': ('matching on points, loss on full masks', "criterion.loss_on='masks'", '-0.5 at 3x memory'),
    'queries_12': ('12 queries instead of 24', 'panoptic_head.num_queries=12', 'MaskFormer: fewer than 100 lower'),
    'queries_48': ('48 queries instead of 24', 'panoptic_head.num_queries=48', 'MaskFormer: more than 100 lower'),
    'maskformer': ('MaskFormer (its head; same backbone, data, schedule)', 'the MaskFormer head',
                   '-5.4 (46.5 vs 51.9, 300 vs 50 epochs)'),
    # MaskFormer with the paper's decoder dropout can rely on dropout's noise here (below); the same diagnosis as the
    # semantic table's, against the paper's Mask2Former-vs-MaskFormer figure
    'maskformer_no_dropout_panoptic': ('MaskFormer without dropout in its decoder (a diagnosis of the row above)',
                                       'the MaskFormer head, decoder dropout 0.0',
                                       '-5.4 (its MaskFormer has dropout 0.1)'),
}
# The semantic table (mmseg EncoderDecoders on the synthetic label PNGs, mIoU): MaskFormer's Tables 2 and 4
# (ADE20K, R50: PerPixelBaseline 39.2, PerPixelBaseline+ 41.9, MaskFormer 44.5, fixed matching 43.7 vs bipartite
# 44.2) and Mask2Former's (ADE20K, R50: 47.2). Reference: MaskFormer, as in its paper.
SEMANTIC_VARIANTS = {
    'maskformer_semantic': ('MaskFormer (mask classification, bipartite matching)', '-', None),
    'm2f_semantic': ('Mask2Former', 'the Mask2Former head', '+2.7 (47.2 vs 44.5)'),
    'perpixel': ('PerPixelBaseline: per-pixel classification', "decode_head.type='M2FPerPixelHead'",
                 '-5.3 (39.2 vs 44.5)'),
    'perpixel_plus': ('PerPixelBaseline+: + transformer, one query per class', "decode_head.type='M2FPerPixelPlusHead'",
                      '-2.6 (41.9 vs 44.5)'),
    'fixed_matching': ('MaskFormer with fixed matching (query c = class c)', "criterion.assigner.type='M2FFixedMatcher'",
                       '-0.5 (43.7 vs 44.2)'),
    'maskformer_no_dropout': ('MaskFormer without dropout in its decoder (a diagnosis, not a paper row)',
                              'transformer_decoder.layer_cfg.dropout=0.0', None),
}
# With the paper's dropout in its DETR decoder, MaskFormer can tell its queries apart in training by dropout's noise
# alone (the first self-attention sees identical zero features) and, with bipartite matching, predict the same thing
# with every query at test time; a second semantic table compares the rows against the run without that dropout.
NO_DROPOUT_REFERENCE = 'maskformer_no_dropout'
SECOND_SEMANTIC_HEADING = ('**The same rows against MaskFormer without decoder dropout** (mIoU; the paper\'s '
                           'figures are still against its MaskFormer):\n')
# One model, three tasks (Mask2Former's limitations table, COCO): the panoptic-trained runs ('masked') evaluated
# for instances and semantics against the same model trained for that task alone.
TASK_ROWS = [('instance (mask AP)', 'coco/segm_mAP', 'instance_only', 'coco/segm_mAP', '41.7 vs 43.7 AP', -2.0),
             ('semantic (mIoU)', 'sem_seg/mIoU', 'm2f_semantic', 'mIoU', '61.7 vs 61.5 mIoU', +0.2)]
TASK_VARIANTS = {'instance_only': ('Mask2Former trained for instance segmentation only', '-', None)}
CONFIGS = {  # the runs that are not configs/ablations/<CONFIG stem>_<name>.py
    'masked': CONFIG,
    'maskformer': 'configs/maskformer_r18-q24_1xb8-2k_synthetic-panoptic.py',
    'maskformer_semantic': 'configs/maskformer_r18-q24_1xb8-2k_synthetic-semantic.py',
    'm2f_semantic': 'configs/m2f_r18-q24_1xb8-2k_synthetic-semantic.py',
    'instance_only': 'configs/m2f_r18-q24_1xb8-2k_synthetic-instance.py',
    'perpixel': 'configs/ablations/maskformer_r18-q24_1xb8-2k_synthetic-semantic_perpixel.py',
    'perpixel_plus': 'configs/ablations/maskformer_r18-q24_1xb8-2k_synthetic-semantic_perpixel-plus.py',
    'fixed_matching': 'configs/ablations/maskformer_r18-q24_1xb8-2k_synthetic-semantic_fixed-matching.py',
    'maskformer_no_dropout': 'configs/ablations/maskformer_r18-q24_1xb8-2k_synthetic-semantic_no-dropout.py',
    'maskformer_no_dropout_panoptic': 'configs/ablations/maskformer_r18-q24_1xb8-2k_synthetic-panoptic_no-dropout.py',
}
ALL_RUNS = {**VARIANTS, **SEMANTIC_VARIANTS, **TASK_VARIANTS}
MAIN_PAIR = ('masked', 'unmasked')  # the per-seed table's pair
MMDET = 'mmdet'  # the baseline's run name
# --quick: 4 iterations of batch 2, validated at 2 and 4, in the main process (--cfg-options)
QUICK_OPTIONS = ['train_cfg.max_iters=4', 'train_cfg.val_interval=2', 'default_hooks.logger.interval=1',
                 'log_processor.window_size=1', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                 'train_dataloader.persistent_workers=False', 'default_hooks.checkpoint.interval=4',
                 'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0']


def variant_config(variant: str) -> str:
    """The checked-in config of an ablation run (repository-relative)."""
    if variant in CONFIGS:
        return CONFIGS[variant]
    stem = osp.splitext(osp.basename(CONFIG))[0]
    return f'configs/ablations/{stem}_{variant.replace("_", "-")}.py'


def run_name(variant: str, seed: int) -> str:
    """Work-dir name of a run; seed 0 of 'masked' / 'unmasked' are the main job's own runs."""
    return variant if seed == 0 else f'{variant}-seed{seed}'


def run(cmd: List[str], env: Dict[str, str] = None) -> float:
    """Run ``cmd`` in the repository; raise if it fails; return its peak RSS in MB (Linux ru_maxrss, KiB)."""
    print('\n$ ' + ' '.join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage (max over it and its workers)
    proc.returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return usage.ru_maxrss / 1024


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
            metrics = json.load(f)
        if metrics.get('max_iters', args.iters) != args.iters:
            from m2f_mm.errors import M2FConfigError
            raise M2FConfigError(f'{done_file} was trained for {metrics["max_iters"]} iterations, this run asks for '
                                 f'{args.iters}: give another --work-root, or the same --iters')
        metrics['work_dir'] = work_dir  # where it is now (a recorded run may have been copied from elsewhere)
        record(args, name, work_dir)
        return metrics
    if args.finished_only:
        print(f'not run: {work_dir} has no metrics.json (--finished-only trains nothing)')
        return None
    start = time.perf_counter()
    peak = run([py, 'tools/train.py', config, '--work-dir', work_dir] + extra, env=env)
    train_minutes = (time.perf_counter() - start) / 60
    with open(osp.join(REPO, work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    from m2f_mm.visualization import run_report as report
    log = report.training_log(osp.join(REPO, work_dir))
    if test:
        test_dir = osp.join(work_dir, 'test')
        run([py, 'tools/test.py', config, checkpoint, '--work-dir', test_dir] + extra, env=env)
        metrics = dict(log, **report.latest_metrics(osp.join(REPO, test_dir)))
    else:
        metrics = log
    metrics.update(train_minutes=train_minutes, peak_rss_mb=peak, checkpoint=checkpoint, work_dir=work_dir,
                   config=config, max_iters=args.iters)
    with open(done_file, 'w') as f:
        json.dump(metrics, f, indent=1)
    record(args, name, work_dir)
    return metrics


def record(args, name: str, work_dir: str) -> None:
    """With --record DIR: keep what the tables and curves need of a finished run (metrics.json and the
    training log's scalars.json, a few KB; no checkpoints) in DIR/name, so that
    ``--finished-only --work-root DIR`` rebuilds the tables on a machine that never trained them."""
    if not args.record or osp.abspath(osp.join(REPO, args.record)) == osp.abspath(osp.join(REPO, args.work_root)):
        return
    source, dest = osp.join(REPO, work_dir), osp.join(REPO, args.record, name)
    os.makedirs(dest, exist_ok=True)
    with open(osp.join(source, 'metrics.json')) as f:
        metrics = json.load(f)
    metrics.pop('checkpoint', None)  # a path on the machine that trained it; checkpoints are not kept
    with open(osp.join(dest, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=1)
    for scalars in glob.glob(osp.join(source, '*', 'vis_data', 'scalars.json')):
        relative = osp.relpath(scalars, source)
        os.makedirs(osp.dirname(osp.join(dest, relative)), exist_ok=True)
        shutil.copyfile(scalars, osp.join(dest, relative))


def run_ablations(args, extra: List[str]) -> Dict[str, List[Dict]]:
    groups = {}
    for variant in ALL_RUNS:
        if variant not in args.variants:
            continue
        groups[variant] = []
        for seed in args.seeds:
            name = run_name(variant, seed)
            result = train_and_score(name, variant_config(variant), args, extra + [f'randomness.seed={seed}'],
                                     test=False)
            _add_run(groups[variant], result, seed)
    return groups


def _add_run(runs: List[Dict], result: Optional[Dict], seed: int) -> None:
    """Append a finished run's results tagged with its seed (the per-seed table pairs runs by it)."""
    if result is not None:
        runs.append(dict(result, seed=seed))


def run_baseline(args, extra: List[str]) -> Dict[str, List[Dict]]:
    # custom_imports of the baseline config needs its module importable (benchmark code, not in m2f_mm)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [osp.join(REPO, osp.dirname(BASELINE_CONFIG))] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    groups = {'masked': [], MMDET: []}
    for seed in args.seeds:
        seeded = extra + [f'randomness.seed={seed}']
        _add_run(groups['masked'], train_and_score(run_name('masked', seed), CONFIG, args, seeded, test=False), seed)
        result = train_and_score(run_name(MMDET, seed), BASELINE_CONFIG, args, seeded, test=False, env=env)
        _add_run(groups[MMDET], result, seed)
    return groups


def write_ablations(args, groups: Dict[str, List[Dict]], labels: Dict[str, str]) -> None:
    """The three tables and their curves: the panoptic ablations (ablations.md / .png), per-pixel vs mask
    classification for semantic segmentation (+ semantic.png), one model for three tasks."""
    from m2f_mm.visualization.curves import plot_run_groups
    from m2f_mm.visualization import run_report as report
    panoptic = {n: groups[n] for n in VARIANTS if n in groups}
    semantic = {n: groups[n] for n in SEMANTIC_VARIANTS if n in groups}
    out = osp.join(REPO, args.out)
    sections = []
    if panoptic:
        plot_run_groups(report.curve_groups(panoptic, labels), osp.join(out, 'ablations.png'),
                        title='ablations (mean over seeds)')
        sections += ['**Mask2Former\'s ablations** (PQ):\n', report.ablation_table(panoptic, VARIANTS, 'masked'),
                     report.seed_table(groups, args.seeds, MAIN_PAIR, labels)]
    if semantic:
        plot_run_groups(report.curve_groups(semantic, labels), osp.join(out, 'semantic.png'), loss_keys=('loss', ),
                        metric_key='mIoU', title='semantic segmentation: per-pixel vs mask classification')
        sections += ['**Semantic segmentation: per-pixel vs mask classification** (mIoU; reference: MaskFormer):\n',
                     report.ablation_table(semantic, SEMANTIC_VARIANTS, 'maskformer_semantic',
                                           report.SEMANTIC_METRICS, 'mIoU')]
        if semantic.get(NO_DROPOUT_REFERENCE):
            sections += [SECOND_SEMANTIC_HEADING,
                         report.ablation_table(semantic, SEMANTIC_VARIANTS, NO_DROPOUT_REFERENCE,
                                               report.SEMANTIC_METRICS, 'mIoU')]
    single = {label: groups.get(run, []) for label, _, run, _, _, _ in TASK_ROWS}
    if 'masked' in groups and any(single.values()):
        rows = [report.TaskRow(label, key, single_key, paper, delta)
                for label, key, _, single_key, paper, delta in TASK_ROWS]
        sections += ['**One model, three tasks** (the Mask2Former runs above, trained for panoptic segmentation, '
                     'against the same model trained for one task):\n',
                     report.task_table(groups['masked'], single, rows)]
    write_report(osp.join(args.out, 'ablations'), groups, '\n'.join(sections))


def write_report(stem: str, groups: Dict[str, List[Dict]], table: str) -> None:
    """``stem``.md (the tables) and ``stem``.json (every run's results, by group)."""
    with open(osp.join(REPO, stem + '.md'), 'w') as f:
        f.write(table)
    with open(osp.join(REPO, stem + '.json'), 'w') as f:
        json.dump(groups, f, indent=1)
    print(table)
    print(f'wrote {stem}.md, {stem}.json')


def default_folders(quick: bool, iters: Optional[int] = None) -> Dict[str, str]:
    """Where data, pictures and runs go by default: a quick run has folders of its own, so that it never
    leaves its handful of images or its 4-iteration run where the real job would pick them up, and so have
    runs of another length (--iters N: outputs/demo-Nit, work_dirs/demo-Nit; the data are the same)."""
    suffix = '-quick' if quick else ''
    runs = suffix + (f'-{iters}it' if iters else '')
    return dict(data=f'data/synthetic{suffix}', out=f'outputs/demo{runs}', work_root=f'work_dirs/demo{runs}')


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
                        help="train the paper's ablation switches side by side (configs/ablations/)")
    parser.add_argument('--baseline', choices=['mmdet'],
                        help="also train mmdet 3.3.0's own Mask2Former with the same data, schedule and seeds")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='seeds of every ablation run and of the baseline (default: 0 1 2)')
    parser.add_argument('--variants', nargs='+', choices=list(ALL_RUNS), default=list(ALL_RUNS),
                        metavar='NAME', help='the ablation runs to train (default: all of '
                        f'{", ".join(ALL_RUNS)}); with --reuse, a later run with all of them assembles the tables')
    parser.add_argument('--iters', type=int, help='train every run for N iterations instead of the config\'s '
                        '(the schedule is in fractions of it, so warm-up, decays and validations follow); '
                        'runs and outputs go to folders of their own (work_dirs/demo-Nit, outputs/demo-Nit)')
    parser.add_argument('--record', metavar='DIR', help='copy what the tables and curves need of each finished run '
                        '(metrics.json, scalars.json; no checkpoints) to DIR/<run>; --finished-only --work-root DIR '
                        'rebuilds the tables from them')
    parser.add_argument('--quick', action='store_true', help='a few iterations on a handful of images')
    parser.add_argument('--reuse', action='store_true', help='reuse runs already trained and scored in --work-root')
    parser.add_argument('--finished-only', action='store_true',
                        help='train nothing: assemble the tables and curves from the runs already finished in '
                             '--work-root; the others are listed as not run')
    args = parser.parse_args()
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be a positive number of iterations, got {args.iters}')
    for key, value in default_folders(args.quick, args.iters).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        parser.error(f'--seeds must be distinct non-negative integers, got {args.seeds}')
    py = sys.executable
    os.makedirs(osp.join(REPO, args.out), exist_ok=True)

    if (args.ablations or args.baseline) and args.config != CONFIG:
        parser.error(f'--ablations and --baseline compare runs of {CONFIG} (configs/ablations/ and '
                     f'benchmarks/mmdet_baseline/ inherit it); leave --config out')

    extra = ['--cfg-options', f'data_root={args.data}/']  # every dataset and evaluator follows it (m2f_mm.config)
    if args.quick:
        extra += QUICK_OPTIONS
    if args.iters:
        extra.append(f'train_cfg.max_iters={args.iters}')
    settings = data_settings(args.quick)
    reason = regenerate_reason(osp.join(REPO, args.data, 'meta.json'), settings)
    if args.finished_only:
        pass  # trains nothing, so needs no data
    elif reason:
        print(f'{args.data}: {reason}; generating it')
        run([py, 'tools/dataset_converters/make_synthetic_data.py', '--out', args.data,
             '--num-train', str(settings['num_train']), '--num-val', str(settings['num_val']),
             '--size', *[str(v) for v in settings['size']], '--seed', str(settings['seed'])])
    else:
        print(f'using the existing synthetic data in {args.data} (written with these settings)')

    if args.ablations or args.baseline:
        from m2f_mm.visualization.curves import plot_run_groups
        from m2f_mm.visualization import run_report as report
        labels = {name: variant[0] for name, variant in ALL_RUNS.items()}
        if args.ablations:
            groups = run_ablations(args, extra)
            write_ablations(args, groups, labels)
        if args.baseline:
            groups = run_baseline(args, extra)
            labels.update(masked='m2f_mm Mask2Former', mmdet="mmdet 3.3.0's Mask2Former")
            plot_run_groups(report.curve_groups(groups, labels), osp.join(REPO, args.out, 'baseline.png'),
                            title="m2f_mm vs mmdet's Mask2Former (same data, schedule, seeds)")
            write_report(osp.join(args.out, 'baseline'), groups,
                         report.baseline_table(groups['masked'], groups[MMDET]) + '\n'
                         + report.seed_table(groups, args.seeds, ('masked', MMDET), {n: v[0] for n, v in VARIANTS.items()}))
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
    from m2f_mm.errors import run_main
    run_main(main)
