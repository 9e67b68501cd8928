"""Property tests of the PQ computation on many seeded random GT / prediction maps.

PQ, SQ and RQ lie in [0, 1]; every non-crowd GT segment is a true positive or a false negative
exactly once; a prediction equal to the GT scores 1; PQ = SQ x RQ per class.
"""
import numpy as np
import pytest

from m2f_mm.evaluation.pq import PQStat, pq_stat_single, summarize

CASES = 150


def random_maps(rng):
    """Segment-id maps (0 = VOID) and COCO segment lists for GT and prediction, random categories."""
    h, w = int(rng.integers(1, 24)), int(rng.integers(1, 24))
    num_cats = int(rng.integers(1, 5))
    categories = {10 + k: dict(id=10 + k, isthing=int(rng.random() < 0.5)) for k in range(num_cats)}

    def segments_map(num):
        ids = rng.integers(0, num + 1, (h, w))  # 0 = VOID
        present = [int(i) for i in np.unique(ids) if i]
        segs = [dict(id=i, category_id=int(rng.choice(list(categories))), iscrowd=int(rng.random() < 0.15))
                for i in present]
        return ids, segs

    gt_ids, gt_segs = segments_map(int(rng.integers(0, 6)))
    if rng.random() < 0.3:   # prediction = GT with a few pixels changed
        pred_ids = gt_ids.copy()
        pred_ids[rng.random((h, w)) < 0.1] = 0
        pred_segs = [dict(id=s['id'], category_id=s['category_id']) for s in gt_segs
                     if (pred_ids == s['id']).any()]
    else:
        pred_ids, pred_segs = segments_map(int(rng.integers(0, 6)))
    return gt_ids, gt_segs, pred_ids, pred_segs, categories


@pytest.mark.parametrize('seed', range(CASES))
def test_pq_invariants(seed):
    rng = np.random.default_rng(seed)
    gt_ids, gt_segs, pred_ids, pred_segs, categories = random_maps(rng)
    stat = pq_stat_single(gt_ids, gt_segs, pred_ids, pred_segs, categories, seed)
    for k, cat in enumerate(stat.category_ids):
        gts = [s for s in gt_segs if s['category_id'] == cat and not s['iscrowd']]
        assert stat.tp[k] + stat.fn[k] == len(gts)                 # each GT segment counted once
        assert stat.tp[k] + stat.fp[k] <= sum(s['category_id'] == cat for s in pred_segs)
        assert 0 <= stat.iou[k] <= stat.tp[k] + 1e-9                # matched IoUs are in (0.5, 1]
        assert stat.iou[k] >= 0.5 * stat.tp[k]
    summary = summarize(stat, categories)
    for group in ('All', 'Things', 'Stuff'):
        for key in ('pq', 'sq', 'rq'):
            assert 0.0 <= summary[group][key] <= 1.0 + 1e-12
    for per in summary['per_class'].values():
        assert per['pq'] == pytest.approx(per['sq'] * per['rq'])


@pytest.mark.parametrize('seed', range(40))
def test_a_perfect_prediction_scores_one(seed):
    rng = np.random.default_rng(1000 + seed)
    gt_ids, gt_segs, _, _, categories = random_maps(rng)
    pred = [dict(id=s['id'], category_id=s['category_id']) for s in gt_segs if not s['iscrowd']]
    keep = np.isin(gt_ids, [s['id'] for s in pred])
    stat = pq_stat_single(gt_ids, gt_segs, np.where(keep, gt_ids, 0), pred, categories, seed)
    assert (stat.fp == 0).all() and (stat.fn == 0).all()
    summary = summarize(stat, categories)
    if summary['All']['n']:
        assert summary['All']['pq'] == pytest.approx(1.0)
    total = PQStat(tuple(categories))
    total += stat
    assert (total.tp == stat.tp).all()
