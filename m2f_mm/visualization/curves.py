"""Training curves from mmengine's logs: ``WORK_DIR/TIMESTAMP/vis_data/scalars.json`` (one JSON per line).

Train records carry ``iter`` and the loss terms; validation records carry the metrics
(``coco_panoptic/PQ``, ``coco/segm_mAP``, ``mIoU`` ...) and a ``step`` that counts validations,
so a validation value is placed at the last training iteration logged before it.
"""
import glob
import json
import os.path as osp
from typing import Dict, List, Sequence, Tuple


def read_scalars(work_dir: str) -> List[dict]:
    """All records of the ``vis_data/scalars.json`` files under ``work_dir`` (oldest run first), or
    of ``work_dir`` itself when it is such a file."""
    paths = [work_dir] if osp.isfile(work_dir) else sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                                                              'scalars.json')))
    if not paths:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir!r}: is it a training work dir?')
    records = []
    for path in paths:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def series(records: Sequence[dict], keys: Sequence[str]) -> Dict[str, List[Tuple[int, float]]]:
    """-> {key: [(iteration, value), ...]} for each key found in the records."""
    out: Dict[str, List[Tuple[int, float]]] = {k: [] for k in keys}
    last_iter = 0
    for record in records:
        is_train = 'iter' in record  # validation records have only 'step'
        if is_train:
            last_iter = record['iter']
        for key in keys:
            if key in record:
                out[key].append((record['iter'] if is_train else last_iter, float(record[key])))
    return out


def plot_curves(records: Sequence[dict], out_file: str, keys: Sequence[str] = ('loss', ),
                metric_keys: Sequence[str] = ('coco_panoptic/PQ', ), title: str = '') -> Dict[str, int]:
    """Loss-like ``keys`` (log scale, left axis) and ``metric_keys`` (percent, right axis) against the
    iteration, into ``out_file``. Returns how many points each key had (missing keys: 0)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    data = series(records, list(keys) + list(metric_keys))
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        if data[key]:
            ax.plot(*zip(*data[key]), label=key)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    if any(data[k] and min(v for _, v in data[k]) > 0 for k in keys):
        ax.set_yscale('log')
    handles, labels = ax.get_legend_handles_labels()
    if any(data[k] for k in metric_keys):
        ax2 = ax.twinx()
        for key in metric_keys:
            if data[key]:
                ax2.plot(*zip(*data[key]), 'o--', label=f'val {key}')
        ax2.set_ylabel('validation metric (%)')
        ax2.set_ylim(0, 100)
        more = ax2.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if handles:
        ax.legend(handles, labels, loc='best', fontsize=8)
    ax.set_title(title or 'm2f_mm training')
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return {key: len(values) for key, values in data.items()}


def _mean_curve(curves: Sequence[List[Tuple[int, float]]]) -> Tuple[List[int], List[float], List[float], List[float]]:
    """Curves of several runs -> (iterations all share, mean, min, max) at those iterations."""
    common = sorted(set.intersection(*[{it for it, _ in c} for c in curves])) if curves else []
    values = [[dict(c)[it] for c in curves] for it in common]
    return common, [sum(v) / len(v) for v in values], [min(v) for v in values], [max(v) for v in values]


def plot_run_groups(groups: Dict[str, Sequence[str]], out_file: str,
                    loss_keys: Sequence[str] = ('loss_cls', 'loss_mask', 'loss_dice'),
                    metric_key: str = 'coco_panoptic/PQ', title: str = '') -> Dict[str, int]:
    """Training loss (left: the sum of ``loss_keys``, by default the last prediction set's terms, which
    runs with different numbers of supervised sets share) and validation ``metric_key`` (right) against
    the iteration, one colour per group of runs (label -> training work dirs, e.g. one per seed): the
    mean over the group's runs, with the min-max band when it has several. Returns how many validation
    points each group has."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(12, 4.5))
    counts = {}
    for i, (label, work_dirs) in enumerate(groups.items()):
        colour = f'C{i % 10}'
        data = []
        for work_dir in work_dirs:
            found = series(read_scalars(work_dir), list(loss_keys) + [metric_key])
            parts = [dict(found[k]) for k in loss_keys]
            shared = set.intersection(*map(set, parts)) if parts else set()
            found['loss'] = [(it, sum(p[it] for p in parts)) for it in sorted(shared)]
            data.append(found)
        for ax, key in ((ax_loss, 'loss'), (ax_metric, metric_key)):
            its, avg, low, high = _mean_curve([d[key] for d in data if d[key]])
            if not its:
                continue
            suffix = f' ({len(work_dirs)} seeds)' if len(work_dirs) > 1 else ''
            ax.plot(its, avg, '-' if ax is ax_loss else 'o-', color=colour, label=label + suffix, lw=1.2)
            if len(work_dirs) > 1:
                ax.fill_between(its, low, high, color=colour, alpha=0.2)
        counts[label] = len(_mean_curve([d[metric_key] for d in data if d[metric_key]])[0])
    ax_loss.set(xlabel='iteration', ylabel=' + '.join(loss_keys), yscale='log', title='training loss (last set)')
    ax_metric.set(xlabel='iteration', ylabel=f'validation {metric_key} (%)', title=f'validation {metric_key}')
    ax_metric.legend(fontsize=8, loc='lower right')
    fig.suptitle(title or 'm2f_mm runs (mean over seeds, band = min..max)')
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return counts
