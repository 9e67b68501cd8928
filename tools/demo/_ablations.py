"""The paper's ablations and the mmdet baseline as runs of the main-job config: what each run changes,
its leaf config, and the tables comparing runs (used by tools/demo/run_demo.py).

Each variant is a config override of the real model (no fork): a leaf config in the run's work dir
inherits the main-job config and changes one switch and the seed, so every run trains the same
data with the same schedule. Paper figures: Mask2Former (CVPR 2022) ablations on COCO, R50.
"""
import math
import os.path as osp
from statistics import mean, stdev
from typing import Dict, List, Optional, Sequence

# name -> (label, the switch as a config key, overrides of the main-job config, the paper's PQ change)
VARIANTS = {
    'masked': ('Mask2Former (every component on)', '-', {}, None),
    'unmasked': ('no masked attention', 'transformer_decoder.use_masked_attention=False',
                 dict(model=dict(panoptic_head=dict(transformer_decoder=dict(use_masked_attention=False)))), -4.8),
    'zero_queries': ('zero query features, set 0 not supervised', 'panoptic_head.learnable_query_features=False',
                     dict(model=dict(panoptic_head=dict(learnable_query_features=False))), -0.7),
    'single_level': ('single 1/32 feature level, no round-robin', 'transformer_decoder.feature_levels=[0]',
                     dict(model=dict(panoptic_head=dict(transformer_decoder=dict(feature_levels=[0])))), -1.7),
    'full_mask': ('full-mask loss instead of sampled points', 'criterion.full_mask=True',
                  dict(model=dict(panoptic_head=dict(criterion=dict(full_mask=True)))), '-1.6 at 3x memory'),
    'fpn_decoder': ('FPN pixel decoder instead of MSDeformAttn', "pixel_decoder.type='M2FFPNPixelDecoder'",
                    dict(model=dict(panoptic_head=dict(pixel_decoder=dict(
                        _delete_=True, type='M2FFPNPixelDecoder', num_outs=3,
                        norm_cfg=dict(type='GN', num_groups=16))))), -1.2),
}
MAIN_PAIR = ('masked', 'unmasked')  # trained with every seed; the other variants with the first seed
MMDET = 'mmdet'  # the baseline's run name
METRICS = [('PQ', 'coco_panoptic/PQ'), ('PQ things', 'coco_panoptic/PQ_th'), ('PQ stuff', 'coco_panoptic/PQ_st'),
           ('mask AP', 'coco/segm_mAP'), ('mIoU', 'sem_seg/mIoU')]


def run_name(variant: str, seed: int) -> str:
    """Work-dir name of a run; seed 0 of 'masked' / 'unmasked' are the main job's own runs."""
    return variant if seed == 0 else f'{variant}-seed{seed}'


def leaf_config(base: str, overrides: Dict, seed: int, imports: Sequence[str] = ()) -> str:
    """Text of a config inheriting ``base`` (absolute path) with ``overrides`` and ``seed``."""
    lines = [f'_base_ = [{base!r}]']
    if imports:
        lines.append(f"custom_imports = dict(imports={['m2f_mm', *imports]!r}, allow_failed_imports=False)")
    lines += [f'{key} = {value!r}' for key, value in overrides.items()]
    lines.append(f'randomness = dict(seed={int(seed)})')
    return '\n'.join(lines) + '\n'


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


def ablation_table(groups: Dict[str, List[Dict]]) -> str:
    """groups: variant name -> its runs' result dicts (one per seed) -> markdown table."""
    head = ['variant', 'switch', *[label for label, _ in METRICS], 'ΔPQ', 'paper ΔPQ',
            'peak memory (MB)', 's / iter', 'train min']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    reference = _mean([metric(r, 'coco_panoptic/PQ') for r in groups.get('masked', [])])
    for name, runs in groups.items():
        label, switch, _, paper = VARIANTS[name]
        cells = [label, f'`{switch}`' if switch != '-' else '-']
        cells += [summary([metric(r, key) for r in runs]) for _, key in METRICS]
        pq = _mean([metric(r, 'coco_panoptic/PQ') for r in runs])
        cells.append('-' if name == 'masked' or pq is None or reference is None else f'{pq - reference:+.1f}')
        cells.append('-' if paper is None else (f'{paper:+.1f}' if isinstance(paper, float) else paper))
        cells += _cost_cells(runs)
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def seed_table(groups: Dict[str, List[Dict]], seeds: Sequence[int], names: Sequence[str]) -> str:
    """Per-seed PQ of the runs in ``names`` and the difference of the first two, seed by seed."""
    labels = [VARIANTS[n][0] if n in VARIANTS else n for n in names]
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


def seeds_of(variant: str, seeds: Sequence[int]) -> List[int]:
    """Every seed for the main comparison, the first seed for the other variants."""
    return list(seeds) if variant in MAIN_PAIR else list(seeds[:1])


def config_path(work_root: str, name: str) -> str:
    """Where a run's leaf config goes (outside its work dir, where mmengine dumps the resolved config)."""
    return osp.join(work_root, 'configs', f'{name}.py')
