"""Images per second of m2f_mm's PQ (numpy, panopticapi semantics) vs torchmetrics' PanopticQuality,
on the same in-memory inputs: per image a (category, instance) map for GT and prediction.

    python benchmarks/pq_throughput.py [--images 20] [--size 480 640] [--runs 5]

Both start from the same (H, W, 2) int arrays; m2f_mm's time includes turning them into segment-id maps and
segments lists. The scenes have no crowd regions and no VOID in the prediction, where both definitions agree
(the script checks the two PQ values). Median over ``--runs`` runs; one thread.
"""
import argparse
import statistics
import time

import numpy as np
import torch

from m2f_mm.evaluation.pq import PQStat, pq_stat_single, summarize

THINGS, STUFFS = list(range(1, 81)), list(range(81, 134))
VOID_CAT = 200


def make_scene(rng: np.random.Generator, h: int, w: int, cells: int = 8):
    """A grid of thing / stuff cells (~50 segments); prediction: 20% of cells relabelled, 10% of pixels copied from
    random places; GT: 5% VOID pixels."""
    gh, gw = cells, cells * w // h
    cat = rng.choice(THINGS[:10] + STUFFS[:6], (gh, gw))
    inst = np.where(np.isin(cat, THINGS), rng.integers(1, 6, (gh, gw)), 0)
    up = lambda a: np.kron(a, np.ones((h // gh + 1, w // gw + 1), np.int64))[:h, :w]
    gt = np.stack([up(cat), up(inst)], -1)
    relabel = rng.random((gh, gw)) < 0.2
    pred = np.stack([up(np.where(relabel, rng.choice(THINGS[:10], (gh, gw)), cat)), up(np.where(relabel, 9, inst))], -1)
    noise = rng.random((h, w)) < 0.1
    pred[noise] = gt[rng.integers(0, h, noise.sum()), rng.integers(0, w, noise.sum())]
    gt[rng.random((h, w)) < 0.05] = (VOID_CAT, 0)
    return gt, pred


def ours(pairs, categories) -> float:
    stat = PQStat(tuple(categories))
    for k, (gt, pred) in enumerate(pairs):
        maps = []
        for arr in (gt, pred):
            ids = np.where(arr[..., 0] == VOID_CAT, 0, arr[..., 0] * 1000 + arr[..., 1] + 1)
            segs = [dict(id=int(i), category_id=int((i - 1) // 1000)) for i in np.unique(ids) if i]
            maps.append((ids, segs))
        stat += pq_stat_single(maps[0][0], maps[0][1], maps[1][0], maps[1][1], categories, k)
    return summarize(stat, categories)['All']['pq']


def theirs(pairs) -> float:
    from torchmetrics.detection import PanopticQuality
    metric = PanopticQuality(things=set(THINGS), stuffs=set(STUFFS), allow_unknown_preds_category=True)
    for gt, pred in pairs:
        metric.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])
    return float(metric.compute())


def timed(fn, runs: int):
    times, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=20)
    parser.add_argument('--size', type=int, nargs=2, default=(480, 640), metavar=('H', 'W'))
    parser.add_argument('--runs', type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    pairs = [make_scene(rng, *args.size) for _ in range(args.images)]
    categories = {c: {'id': c, 'isthing': int(c in THINGS)} for c in THINGS + STUFFS}
    t_ours, pq_ours = timed(lambda: ours(pairs, categories), args.runs)
    t_theirs, pq_theirs = timed(lambda: theirs(pairs), args.runs)
    n = args.images
    print(f'{n} images {args.size[1]}x{args.size[0]}, median of {args.runs} runs, 1 thread')
    print(f'm2f_mm pq         {n / t_ours:9.1f} images/s   PQ {100 * pq_ours:.4f}')
    print(f'torchmetrics      {n / t_theirs:9.1f} images/s   PQ {100 * pq_theirs:.4f}')
    print(f'speed-up m2f_mm / torchmetrics: {t_theirs / t_ours:.1f}x   (|dPQ| = {abs(pq_ours - pq_theirs):.1e})')


if __name__ == '__main__':
    main()
