"""PQ: hand-made cases with known answers, panopticapi's own per-image loop (via mmdet's copy) and
torchmetrics' PanopticQuality as references on random segmentations."""
from collections import defaultdict

import numpy as np
import pytest
import torch
from PIL import Image

from m2f_mm.evaluation.pq import PQStat, match_annotations, pq_stat_files, pq_stat_single, summarize
from m2f_mm.structures.panoptic_format import id2rgb, rgb2id

CATS = {1: {'id': 1, 'isthing': 1}, 2: {'id': 2, 'isthing': 1}, 7: {'id': 7, 'isthing': 0},
        9: {'id': 9, 'isthing': 0}}


def seg(i, cat, **kw):
    return dict(id=i, category_id=cat, **kw)


def stat_of(stat: PQStat, cat: int):
    i = stat.category_ids.index(cat)
    return int(stat.tp[i]), int(stat.fp[i]), int(stat.fn[i]), float(stat.iou[i])


def test_perfect_prediction_is_100():
    gt = np.zeros((4, 6), np.int64)
    gt[:2, :3], gt[:2, 3:], gt[2:] = 11, 12, 70
    segs = [seg(11, 1), seg(12, 2), seg(70, 7)]
    res = summarize(pq_stat_single(gt, segs, gt.copy(), segs, CATS), CATS)
    assert res['All'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 3}
    assert res['Things']['n'] == 2 and res['Stuff']['n'] == 1
    assert res['per_class'][9] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}  # absent class is not averaged


def test_iou_of_exactly_one_half_does_not_match():
    gt = np.full((1, 4), 5)
    pred = np.array([[5, 5, 6, 6]])                            # pred 5 covers half of gt 5: IoU = 2/4
    stat = pq_stat_single(gt, [seg(5, 1)], pred, [seg(5, 1), seg(6, 2)], CATS)
    assert stat_of(stat, 1) == (0, 1, 1, 0.0)
    pred[0, 2] = 5                                             # 3/4 > 0.5 matches
    stat = pq_stat_single(gt, [seg(5, 1)], pred, [seg(5, 1), seg(6, 2)], CATS)
    assert stat_of(stat, 1) == (1, 0, 0, 0.75)


def test_void_pixels_leave_the_union_and_mostly_void_predictions_are_ignored():
    gt = np.array([[3, 3, 0, 0, 0, 0]])
    pred = np.array([[3, 3, 3, 3, 4, 4]])                      # 3 spills onto VOID; 4 lies entirely on VOID
    stat = pq_stat_single(gt, [seg(3, 7)], pred, [seg(3, 7), seg(4, 9)], CATS)
    assert stat_of(stat, 7) == (1, 0, 0, 1.0)                  # union = 4 + 2 - 2 - 2
    assert stat_of(stat, 9) == (0, 0, 0, 0.0)                  # not a false positive


def test_crowd_regions_neither_match_nor_count_and_absorb_predictions():
    gt = np.array([[8, 8, 8, 8, 5, 5]])
    gt_segs = [seg(8, 1, iscrowd=1), seg(5, 1)]
    pred = np.array([[6, 6, 6, 0, 5, 5]])                      # 6 (cat 1) lies on the crowd region
    stat = pq_stat_single(gt, gt_segs, pred, [seg(6, 1), seg(5, 1)], CATS)
    assert stat_of(stat, 1) == (1, 0, 0, 1.0)
    stat = pq_stat_single(gt, gt_segs, pred, [seg(6, 2), seg(5, 1)], CATS)  # other category: false positive
    assert stat_of(stat, 2) == (0, 1, 0, 0.0)


def test_pixels_of_unlisted_gt_ids_are_not_void():
    gt = np.array([[3, 3, 44, 44]])                            # 44 is not in the GT JSON
    pred = np.array([[3, 3, 3, 3]])
    stat = pq_stat_single(gt, [seg(3, 7)], pred, [seg(3, 7)], CATS)
    assert stat_of(stat, 7) == (0, 1, 1, 0.0)                  # IoU 2/4, not 2/2


def test_json_area_of_gt_segments_is_used_like_panopticapi():
    gt = np.array([[3, 3, 3, 3]])
    stat = pq_stat_single(gt, [seg(3, 7, area=10)], gt, [seg(3, 7)], CATS)
    assert stat_of(stat, 7) == (0, 1, 1, 0.0)                  # IoU = 4 / 10


@pytest.mark.parametrize('pred, segs, match', [
    (np.array([[3, 3, 5, 5]]), [seg(3, 7)], 'segment with ID 5 is presented in PNG and not presented in JSON'),
    (np.array([[3, 3, 3, 3]]), [seg(3, 7), seg(6, 7)], r'\[6\] are presented in JSON and not presented in PNG'),
    (np.array([[3, 3, 3, 3]]), [seg(3, 4)], 'unknown category_id 4'),
    (np.array([[3, 3, 3]]), [seg(3, 7)], 'size'),
    (np.array([[3, 3, 3, 3]]), [seg(3, 7), seg(3, 7)], 'duplicate'),
])
def test_malformed_predictions_raise_naming_the_image(pred, segs, match):
    with pytest.raises((KeyError, ValueError), match=match):
        pq_stat_single(np.array([[3, 3, 3, 3]]), [seg(3, 7)], pred, segs, CATS, image_id=42)


def random_pair(rng, h=24, w=32, block=4, void=True, crowd=True, pred_void=False):
    """Blocky GT with things (1, 2), stuff (7, 9), VOID and crowd; prediction = perturbed GT."""
    bh, bw = h // block, w // block
    kinds = [(1, i) for i in range(1, 6)] + [(2, i) for i in range(1, 4)] + [(7, 0), (9, 0)]
    labels = rng.integers(0, len(kinds), (bh, bw))
    gt_blocks = np.array([c * 1000 + i for c, i in kinds])[labels]
    if void:
        gt_blocks[rng.random((bh, bw)) < 0.1] = 0
    gt = np.kron(gt_blocks, np.ones((block, block), np.int64))
    pred = gt.copy()
    flip = rng.random((h, w)) < 0.25
    pred[flip] = np.array([c * 1000 + i for c, i in kinds])[rng.integers(0, len(kinds), flip.sum())]
    pred[rng.random((bh, bw)).repeat(block, 0).repeat(block, 1) < 0.15] = 2005  # a spurious thing
    if not pred_void:
        pred[pred == 0] = 7000
    else:
        pred[rng.random((h, w)) < 0.05] = 0
    gt_segs = [dict(id=int(i), category_id=int(i // 1000), iscrowd=int(crowd and i == 1005))
               for i in np.unique(gt) if i]
    pred_segs = [dict(id=int(i), category_id=int(i // 1000)) for i in np.unique(pred) if i]
    return gt, gt_segs, pred, pred_segs


class _RefPQStatCat:
    def __init__(self):
        self.iou, self.tp, self.fp, self.fn = 0.0, 0, 0, 0


class _RefPQStat:
    """panopticapi's PQStat accumulator (the only piece mmdet's copied loop needs from panopticapi)."""

    def __init__(self):
        self.pq_per_cat = defaultdict(_RefPQStatCat)

    def __getitem__(self, i):
        return self.pq_per_cat[i]


@pytest.mark.parametrize('seed', range(5))
def test_matches_panopticapi_loop_exactly(seed, tmp_path, monkeypatch):
    from mmdet.evaluation.functional import panoptic_utils
    monkeypatch.setattr(panoptic_utils, 'PQStat', _RefPQStat)
    monkeypatch.setattr(panoptic_utils, 'rgb2id', rgb2id)
    monkeypatch.setattr(panoptic_utils, 'VOID', 0)
    rng = np.random.default_rng(seed)
    pairs, ours = [], PQStat(tuple(CATS))
    for k in range(3):
        gt, gt_segs, pred, pred_segs = random_pair(rng, pred_void=bool(k % 2))
        Image.fromarray(id2rgb(gt)).save(tmp_path / f'gt{k}.png')
        Image.fromarray(id2rgb(pred)).save(tmp_path / f'pred{k}.png')
        for s in gt_segs:
            s['area'] = int((gt == s['id']).sum())
        pairs.append((dict(image_id=k, file_name=f'gt{k}.png', segments_info=gt_segs),
                      dict(image_id=k, file_name=f'pred{k}.png', segments_info=[dict(s) for s in pred_segs])))
        ours += pq_stat_single(gt, gt_segs, pred, pred_segs, CATS, k)
    ref = panoptic_utils.pq_compute_single_core(0, pairs, str(tmp_path), str(tmp_path), CATS)
    for cat in CATS:
        r = ref.pq_per_cat[cat]
        tp, fp, fn, iou = stat_of(ours, cat)
        assert (tp, fp, fn) == (r.tp, r.fp, r.fn)
        assert iou == pytest.approx(r.iou, abs=1e-12)
    assert sum(ours.tp) > 0 and sum(ours.fp) > 0 and sum(ours.fn) > 0
    from_files = pq_stat_files(pairs, str(tmp_path), str(tmp_path), CATS, workers=2)
    assert np.array_equal(from_files.tp, ours.tp) and np.allclose(from_files.iou, ours.iou, atol=1e-12)


def _torchmetrics_input(ids: np.ndarray) -> torch.Tensor:
    """segment ids -> (category, instance) pairs, VOID as category 99 (unknown = void in torchmetrics)."""
    cat = np.where(ids == 0, 99, ids // 1000)
    return torch.from_numpy(np.stack([cat, ids % 1000], -1))[None]


@pytest.mark.parametrize('seed', range(5))
def test_matches_torchmetrics_where_definitions_coincide(seed):
    """No crowd and no VOID in the prediction: torchmetrics and panopticapi agree."""
    from torchmetrics.detection import PanopticQuality
    rng = np.random.default_rng(seed)
    tm = PanopticQuality(things={1, 2}, stuffs={7, 9}, allow_unknown_preds_category=True, return_sq_and_rq=True)
    ours = PQStat(tuple(CATS))
    for k in range(4):
        gt, gt_segs, pred, pred_segs = random_pair(rng, crowd=False)
        ours += pq_stat_single(gt, gt_segs, pred, pred_segs, CATS, k)
        tm.update(_torchmetrics_input(pred), _torchmetrics_input(gt))
    pq, sq, rq = tm.compute().tolist()
    res = summarize(ours, CATS)['All']
    assert res['pq'] == pytest.approx(pq, abs=1e-6) and res['sq'] == pytest.approx(sq, abs=1e-6)
    assert res['rq'] == pytest.approx(rq, abs=1e-6)
    order = [1, 2, 7, 9]  # torchmetrics: sorted things, then sorted stuff
    assert tm.true_positives.tolist() == [stat_of(ours, c)[0] for c in order]
    assert tm.false_positives.tolist() == [stat_of(ours, c)[1] for c in order]
    assert tm.false_negatives.tolist() == [stat_of(ours, c)[2] for c in order]


def test_deliberate_difference_with_torchmetrics_on_void_predictions():
    """torchmetrics also removes prediction-VOID pixels from the union and drops a GT segment that is mostly
    VOID in the prediction from the false negatives; panopticapi (and we) do neither."""
    from torchmetrics.detection import PanopticQuality
    gt = np.array([[7000, 7000, 7000, 7000, 9000, 9000, 9000, 9000]])
    pred = np.array([[7000, 7000, 7000, 0, 0, 0, 0, 9000]])
    segs = lambda ids: [dict(id=i, category_id=i // 1000) for i in ids]
    ours = pq_stat_single(gt, segs([7000, 9000]), pred, segs([7000, 9000]), CATS)
    assert stat_of(ours, 7) == (1, 0, 0, 0.75)
    assert stat_of(ours, 9) == (0, 1, 1, 0.0)                  # IoU 1/4
    tm = PanopticQuality(things={1, 2}, stuffs={7, 9}, allow_unknown_preds_category=True, return_per_class=True,
                         return_sq_and_rq=True)
    tm.update(_torchmetrics_input(pred), _torchmetrics_input(gt))
    assert tm.iou_sum[2].item() == 1.0                         # class 7: IoU 3 / (4 - 1) = 1
    assert tm.false_negatives[3].item() == 0 and tm.true_positives[3].item() == 1  # class 9: IoU 1/1


def test_file_matching():
    gt = dict(annotations=[dict(image_id=1), dict(image_id=2)])
    with pytest.raises(KeyError, match='no prediction for the image with id: 2'):
        match_annotations(gt, dict(annotations=[dict(image_id=1)]))
    with pytest.raises(KeyError, match='image id 3'):
        match_annotations(gt, dict(annotations=[dict(image_id=3)]))


def test_large_rgb_ids_give_the_same_statistics():
    """Small ids go through a lookup table, large (RGB-coded) ids through searchsorted: same result."""
    rng = np.random.default_rng(7)
    gt, gt_segs, pred, pred_segs = random_pair(rng, pred_void=True)
    big = lambda ids: np.where(ids == 0, 0, ids * 1500 + 7)
    rebig = lambda segs: [dict(s, id=int(s['id']) * 1500 + 7) for s in segs]
    small = pq_stat_single(gt, gt_segs, pred, pred_segs, CATS)
    large = pq_stat_single(big(gt), rebig(gt_segs), big(pred), rebig(pred_segs), CATS)
    assert large.tp.tolist() == small.tp.tolist() and large.fp.tolist() == small.fp.tolist()
    assert large.fn.tolist() == small.fn.tolist() and np.array_equal(large.iou, small.iou)
    assert big(gt).max() > 1 << 20
