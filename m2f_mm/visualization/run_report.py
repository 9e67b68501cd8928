"""Runs side by side: a finished run's results (its test metrics, last validation, speed and memory)
and the markdown tables comparing groups of runs (ablations, seeds, a baseline), as
``tools/demo/run_demo.py --ablations / --baseline`` writes them.

A run's results are a flat dict: metric keys as mmengine logs them (``coco_panoptic/PQ``,
``coco/segm_mAP`` in [0, 1], ``sem_seg/mIoU``), ``sec_per_iter``, ``peak_rss_mb`` / ``peak_cuda_mb``,
``train_minutes``, ``work_dir`` and optionally ``seed``. A group is a list of such runs (one per seed).
"""
import glob
import json
import math
import os.path as osp
import statistics
from statistics import mean, stdev
from typing import Dict, List, NamedTuple, Optional, Sequence, Union

from .curves import read_scalars


class Variant(NamedTuple):
    """One row of the ablation table: what the run changes and the paper's figure for it."""
    label: str
    switch: str  # the config key it sets, '-' for the reference
    paper_delta_pq: Union[float, str, None]  # the paper's PQ change (or a note), None for the reference


METRICS = [('PQ', 'coco_panoptic/PQ'), ('PQ things', 'coco_panoptic/PQ_th'), ('PQ stuff', 'coco_panoptic/PQ_st'),
           ('mask AP', 'coco/segm_mAP'), ('mIoU', 'sem_seg/mIoU')]
SEMANTIC_METRICS = [('mIoU', 'mIoU'), ('mAcc', 'mAcc'), ('aAcc', 'aAcc')]  # mmseg's IoUMetric, in percent
# what a validation record of mmengine's scalars.json holds: mmdet's panoptic / COCO metrics, ours, mmseg's
VALIDATION_KEYS = ('coco_panoptic/', 'coco/', 'sem_seg/', 'mIoU')


def metric(run: Dict, key: str) -> Optional[float]:
    """A metric in percent (mmdet's CocoMetric reports AP in [0, 1]), None when absent."""
    value = run.get(key)
    if value is None:
        return None
    return 100 * value if key.startswith('coco/') else float(value)


def summary(values: List[float]) -> str:
    """'61.2' for one value, 'mean +- sample std (n)' for several."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return '-'
    if len(values) == 1:
        return f'{values[0]:.1f}'
    return f'{mean(values):.1f} ± {stdev(values):.1f} (n={len(values)})'


def _mean(values: List[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return mean(values) if values else None


def _cost_cells(runs: List[Dict]) -> List[str]:
    rss = _mean([r.get('peak_rss_mb') for r in runs])
    cuda = _mean([r.get('peak_cuda_mb') for r in runs])
    memory = f'{cuda:.0f} (GPU)' if cuda else (f'{rss:.0f}' if rss else '-')
    per_iter = _mean([r.get('sec_per_iter') for r in runs])
    minutes = _mean([r.get('train_minutes') for r in runs])
    return [memory, f'{per_iter:.2f}' if per_iter else '-', f'{minutes:.1f}' if minutes else '-']


def latest_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics dict that mmengine's test loop wrote last under ``work_dir/<timestamp>/<timestamp>.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    if not files:
        raise FileNotFoundError(f'no metrics JSON under {work_dir}: did tools/test.py run?')
    with open(files[-1]) as f:
        return json.load(f)


def training_log(work_dir: str) -> Dict[str, float]:
    """From the run's scalars.json: the last validation metrics, median s/iter, peak CUDA memory (MB)."""
    records = read_scalars(work_dir)
    vals = [r for r in records if 'iter' not in r and any(k.startswith(VALIDATION_KEYS) for k in r)]
    times = [r['time'] for r in records if 'iter' in r and 'time' in r]
    out = {k: v for k, v in (vals[-1] if vals else {}).items() if k != 'step'}
    if times:
        out['sec_per_iter'] = statistics.median(times)
    memory = [r['memory'] for r in records if 'memory' in r]  # mmengine logs it on CUDA only
    if memory:
        out['peak_cuda_mb'] = max(memory)
    return out


class PairedDifference(NamedTuple):
    """A variant minus its reference, seed by seed: the mean, the sample std of the differences
    (None for one pair) and the number of pairs."""
    mean: float
    std: Optional[float]
    n: int


def paired_difference(reference: List[Dict], runs: List[Dict],
                      key: str = 'coco_panoptic/PQ') -> Optional[PairedDifference]:
    """``runs`` minus ``reference`` in metric ``key``, paired by the runs' ``seed`` tags (seeds run on one
    side only are left out); None when no seed was run on both sides."""
    by_seed = {r['seed']: metric(r, key) for r in reference if 'seed' in r}
    diffs = []
    for run in runs:
        ours, theirs = metric(run, key), by_seed.get(run.get('seed'))
        if ours is not None and theirs is not None and not math.isnan(ours) and not math.isnan(theirs):
            diffs.append(ours - theirs)
    if not diffs:
        return None
    return PairedDifference(mean(diffs), stdev(diffs) if len(diffs) > 1 else None, len(diffs))


def paper_sign(paper: Union[float, str, None]) -> Optional[int]:
    """The direction of the paper's figure: +1 / -1 for a number or a note starting with one, else None."""
    if isinstance(paper, (int, float)):
        value = float(paper)
    else:
        head = str(paper or '').split(',')[0].split(' ')[0]
        try:
            value = float(head)
        except ValueError:
            return None
    return 0 if value == 0 else (1 if value > 0 else -1)


def verdict(diff: Optional[PairedDifference], paper: Union[float, str, None]) -> str:
    """What a paired difference says about the paper's claim. A difference within twice the spread of
    the paired differences is not resolved at this scale, whatever its sign; one pair has no spread."""
    if diff is None:
        return 'not run'
    if diff.std is None:
        return 'one seed: no spread'
    if abs(diff.mean) < 2 * diff.std:
        return 'not resolved at this scale'
    direction = paper_sign(paper)
    if direction is None:
        return 'resolved (the paper gives no direction)'
    return 'reproduces (same direction)' if (diff.mean > 0) == (direction > 0) else 'opposite of the paper'


def _difference_cell(reference: List[Dict], runs: List[Dict], key: str) -> str:
    diff = paired_difference(reference, runs, key)
    if diff is not None:
        return f'{diff.mean:+.1f}' if diff.std is None else f'{diff.mean:+.1f} ± {diff.std:.1f} (n={diff.n})'
    # untagged runs (no seeds recorded): the difference of the means
    ours, theirs = _mean([metric(r, key) for r in runs]), _mean([metric(r, key) for r in reference])
    return '-' if ours is None or theirs is None else f'{ours - theirs:+.1f}'


def ablation_table(groups: Dict[str, List[Dict]], variants: Dict[str, Variant], reference: str,
                   metrics: Sequence = METRICS, compared: str = 'PQ') -> str:
    """groups: variant name -> its runs' result dicts (one per seed) -> markdown table, one row per
    group, a column per ``metrics`` entry (label, key). Δ``compared`` (a label of ``metrics``): the
    variant minus group ``reference``, paired by seed (mean ± std of the per-seed differences; the
    difference of the means when runs carry no seed); the verdict: :func:`verdict`."""
    key = dict(metrics)[compared]
    head = ['variant', 'switch', *[label for label, _ in metrics], f'Δ{compared}', f'paper Δ{compared}', 'verdict',
            'peak memory (MB)', 's / iter', 'train min']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    reference_runs = groups.get(reference, [])
    for name, runs in groups.items():
        label, switch, paper = variants[name]
        cells = [label, f'`{switch}`' if '=' in switch else switch]  # a config key in code style, else prose
        cells += [summary([metric(r, k) for r in runs]) for _, k in metrics]
        if name == reference:
            cells += ['-', '-', 'reference']
        else:
            cells.append(_difference_cell(reference_runs, runs, key))
            cells.append(_paper_cell(paper))
            cells.append(verdict(paired_difference(reference_runs, runs, key), paper))
        cells += _cost_cells(runs)
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _paper_cell(paper: Union[float, str, None]) -> str:
    return '-' if paper is None else (f'{paper:+.1f}' if isinstance(paper, (int, float)) else paper)


class TaskRow(NamedTuple):
    """One row of :func:`task_table`: a metric of the model trained for every task (panoptic) against
    the same model trained for that task alone, and the paper's two figures."""
    label: str
    key: str  # the metric of the panoptic-trained runs
    single_key: str  # the same metric as the single-task runs log it
    paper: str  # 'panoptic-trained vs single-task', e.g. '41.7 vs 43.7 AP'
    paper_delta: float  # panoptic-trained minus single-task


def task_table(panoptic: List[Dict], single: Dict[str, List[Dict]], rows: Sequence[TaskRow]) -> str:
    """One model, three tasks: for each row, the panoptic-trained runs' metric against the runs of
    ``single[row.label]`` (the model trained for that task alone), paired by seed, with the verdict."""
    head = ['task', 'trained for panoptic', 'trained for this task alone', 'difference (panoptic - alone)',
            'paper (COCO)', 'paper difference', 'verdict']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        alone = single.get(row.label, [])
        renamed = [dict(r, **{row.key: r.get(row.single_key)}) for r in alone]
        diff = paired_difference(renamed, panoptic, row.key)
        cells = [row.label, summary([metric(r, row.key) for r in panoptic]),
                 summary([metric(r, row.single_key) for r in alone]),
                 '-' if diff is None else (f'{diff.mean:+.1f}' if diff.std is None
                                           else f'{diff.mean:+.1f} ± {diff.std:.1f} (n={diff.n})'),
                 row.paper, f'{row.paper_delta:+.1f}', verdict(diff, row.paper_delta)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def seed_table(groups: Dict[str, List[Dict]], seeds: Sequence[int], names: Sequence[str],
               labels: Optional[Dict[str, str]] = None) -> str:
    """Per-seed PQ of the runs in ``names`` (headed by their ``labels``) and the difference of the
    first two, seed by seed."""
    labels = [(labels or {}).get(n, n) for n in names]
    lines = ['| seed | ' + ' | '.join(f'PQ, {lab}' for lab in labels) + ' | difference |',
             '|' + '---|' * (len(names) + 2)]
    diffs = []
    for i, seed in enumerate(seeds):
        pqs = [metric(run, 'coco_panoptic/PQ') if run else None for run in (_run_of(groups.get(n, []), i, seed)
                                                                             for n in names)]
        diff = pqs[0] - pqs[1] if None not in pqs[:2] else None
        diffs.append(diff)
        lines.append(f'| {seed} | ' + ' | '.join('-' if p is None else f'{p:.1f}' for p in pqs)
                     + f" | {'-' if diff is None else f'{diff:+.1f}'} |")
    lines.append('| mean ± std | ' + ' | '.join(summary([metric(r, 'coco_panoptic/PQ') for r in groups.get(n, [])])
                                                for n in names) + f' | {summary(diffs)} |')
    return '\n'.join(lines) + '\n'


def _run_of(runs: List[Dict], index: int, seed: int) -> Optional[Dict]:
    """The run of ``seed``: by its ``seed`` tag when the runs carry one (runs can be missing), else by position."""
    if all('seed' in r for r in runs):
        return next((r for r in runs if r['seed'] == seed), None)
    return runs[index] if index < len(runs) else None


def baseline_table(ours: List[Dict], theirs: List[Dict]) -> str:
    """m2f_mm vs mmdet's Mask2Former (runs over the same seeds) -> markdown table with ratios."""
    lines = ['| | m2f_mm | mmdet 3.3.0 Mask2Former | m2f_mm - mmdet |', '|---|---|---|---|']
    for label, key in METRICS:
        a, b = [metric(r, key) for r in ours], [metric(r, key) for r in theirs]
        ma, mb = _mean(a), _mean(b)
        lines.append(f'| {label} | {summary(a)} | {summary(b)} | '
                     f"{'-' if ma is None or mb is None else f'{ma - mb:+.1f}'} |")
    for label, key, unit in (('training time per iteration', 'sec_per_iter', 's'),
                             ('training wall time', 'train_minutes', 'min'),
                             ('peak memory (training process RSS)', 'peak_rss_mb', 'MB'),
                             ('peak GPU memory', 'peak_cuda_mb', 'MB')):
        ma, mb = _mean([r.get(key) for r in ours]), _mean([r.get(key) for r in theirs])
        if ma is None or mb is None:
            continue
        lines.append(f'| {label} | {ma:.2f} {unit} | {mb:.2f} {unit} | x{ma / mb:.2f} |')
    return '\n'.join(lines) + '\n'


def curve_groups(groups: Dict[str, List[Dict]], labels: Dict[str, str]) -> Dict[str, List[str]]:
    """label -> the work dirs of that group's runs (for m2f_mm.visualization.curves.plot_run_groups)."""
    return {labels.get(name, name): [r['work_dir'] for r in runs] for name, runs in groups.items()}
