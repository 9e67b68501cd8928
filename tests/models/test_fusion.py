"""Inference on hand-built logits whose results are known exactly.

Setting: 2 thing classes (0, 1), 2 stuff classes (2, 3), no-object = 4 = VOID, images of 10 rows x 4 columns.
A query "covers" rows with mask logit +10 (sigmoid ~1) and has -10 elsewhere (sigmoid ~0).
Class logit v at one class and 0 at the other four gives prob e^v / (e^v + 4): v=5 -> 0.974, 6 -> 0.990, 7 -> 0.996.
"""
import pytest
import torch

from m2f_mm.models.fusion import (M2FFusionHead, instance_inference, panoptic_inference,
                                     semantic_inference)
from m2f_mm.registry import MODELS

NUM_THINGS, C, VOID, OFF = 2, 4, 4, 1000
H, W = 10, 4


def cls_row(label: int, v: float = 6.0) -> torch.Tensor:
    row = torch.zeros(C + 1)
    row[label] = v
    return row


def mask_rows(*ranges, inside: float = 10.0, outside: float = -10.0) -> torch.Tensor:
    m = torch.full((H, W), outside)
    for lo, hi in ranges:
        m[lo:hi] = inside
    return m


def rows_of(pan: torch.Tensor, value: int) -> list:
    return [r for r in range(H) if bool((pan[r] == value).all())]


def test_no_query_above_threshold_gives_all_void():
    cls = torch.stack([cls_row(4, 9.0), cls_row(0, 0.5), torch.zeros(C + 1)])  # no-object, 0.29, 0.2
    masks = torch.stack([mask_rows((0, 10))] * 3)
    pan = panoptic_inference(cls, masks, NUM_THINGS)
    assert pan.dtype == torch.int32 and pan.shape == (H, W)
    assert bool((pan == VOID).all())


def test_two_queries_of_one_stuff_class_merge_into_one_segment():
    cls = torch.stack([cls_row(2), cls_row(2, 7.0), cls_row(3)])
    masks = torch.stack([mask_rows((0, 4)), mask_rows((4, 7)), mask_rows((7, 10))])
    pan = panoptic_inference(cls, masks, NUM_THINGS)
    assert rows_of(pan, 2) == list(range(7))  # one id (instance 0) for both queries
    assert rows_of(pan, 3) == [7, 8, 9]
    assert set(pan.unique().tolist()) == {2, 3}


@pytest.mark.parametrize('first_wins', [True, False])
def test_overlapping_things_higher_score_wins(first_wins):
    v0, v1 = (6.0, 5.0) if first_wins else (5.0, 6.0)
    cls = torch.stack([cls_row(0, v0), cls_row(1, v1)])
    masks = torch.stack([mask_rows((0, 6)), mask_rows((5, 10))])  # overlap on row 5; loser keeps >= 0.8
    pan = panoptic_inference(cls, masks, NUM_THINGS)
    assert rows_of(pan, 0 + 1 * OFF) == ([0, 1, 2, 3, 4, 5] if first_wins else [0, 1, 2, 3, 4])
    assert rows_of(pan, 1 + 2 * OFF) == ([6, 7, 8, 9] if first_wins else [5, 6, 7, 8, 9])


def test_mostly_occluded_segment_is_dropped_and_its_pixels_stay_void():
    cls = torch.stack([cls_row(2, 7.0), cls_row(0, 5.0)])       # stuff in front of a thing
    masks = torch.stack([mask_rows((2, 10)), mask_rows((0, 4))])  # thing keeps 2 of its 4 rows: 0.5 < 0.8
    pan = panoptic_inference(cls, masks, NUM_THINGS)
    assert rows_of(pan, VOID) == [0, 1]
    assert rows_of(pan, 2) == list(range(2, 10))
    # with a lower overlap threshold the thing survives as instance 1
    pan = panoptic_inference(cls, masks, NUM_THINGS, iou_thr=0.5)
    assert rows_of(pan, 0 + OFF) == [0, 1]


def test_filter_low_score_voids_pixels_won_with_low_mask_prob():
    cls = torch.stack([cls_row(2), cls_row(3)])
    masks = torch.stack([mask_rows((0, 5), outside=-1.0), mask_rows((5, 8), outside=-2.0)])
    # rows 8, 9: nobody has prob >= 0.5; query 0 wins them (0.99 * 0.27 > 0.99 * 0.12)
    pan = panoptic_inference(cls, masks, NUM_THINGS, iou_thr=0.5)
    assert rows_of(pan, 2) == [0, 1, 2, 3, 4, 8, 9]
    pan = panoptic_inference(cls, masks, NUM_THINGS, iou_thr=0.5, filter_low_score=True)
    assert rows_of(pan, 2) == [0, 1, 2, 3, 4] and rows_of(pan, VOID) == [8, 9]


def test_semantic_inference_is_prob_weighted_mask_sum():
    torch.manual_seed(0)
    cls, masks = torch.randn(7, C + 1), torch.randn(7, H, W)
    sem = semantic_inference(cls, masks, chunk=3)
    expected = torch.einsum('qc,qhw->chw', cls.softmax(-1)[:, :-1], masks.sigmoid())
    assert sem.shape == (C, H, W)
    torch.testing.assert_close(sem, expected)
    cls = torch.stack([cls_row(3, 8.0), cls_row(1, 8.0)])
    sem = semantic_inference(cls, torch.stack([mask_rows((0, 3)), mask_rows((3, 10))]))
    assert sem.argmax(0)[:, 0].tolist() == [3, 3, 3, 1, 1, 1, 1, 1, 1, 1]


def test_instance_inference_topk_before_thing_filter_and_mask_score():
    cls = torch.stack([cls_row(2, 8.0), cls_row(0, 6.0), cls_row(1, 3.0)])  # top-2 pairs: (q0, stuff 2), (q1, 0)
    masks = torch.stack([mask_rows((0, 10)), mask_rows((2, 5), inside=2.0), mask_rows((6, 8))])
    ins = instance_inference(cls, masks, NUM_THINGS, max_per_image=2)
    assert ins.labels.tolist() == [0]  # the stuff pair took a top-k slot and is then dropped
    assert ins.masks.shape == (1, H, W) and ins.masks[0].nonzero()[:, 0].unique().tolist() == [2, 3, 4]
    prob = torch.softmax(cls[1], 0)[0]
    torch.testing.assert_close(ins.scores, (prob * torch.sigmoid(torch.tensor(2.0)))[None])
    assert ins.bboxes.tolist() == [[0.0, 2.0, 4.0, 5.0]]  # x1, y1, x2, y2
    # top-6: (q0, 2), (q1, 0), (q2, 1) then q2's other three classes (0.041 each) -> things kept, by class prob
    ins = instance_inference(cls, masks, NUM_THINGS, max_per_image=6)
    assert ins.labels.tolist() == [0, 1, 0]
    assert [m.nonzero()[:, 0].unique().tolist() for m in ins.masks] == [[2, 3, 4], [6, 7], [6, 7]]
    assert ins.scores.shape == (3, ) and ins.masks.dtype == torch.bool


def _head(chunk: int, **cfg) -> M2FFusionHead:
    test_cfg = dict(panoptic_on=True, instance_on=True, semantic_on=True, semantic_scores=True,
                    query_chunk_size=chunk, object_mask_thr=0.5, **cfg)
    return MODELS.build(dict(type='M2FFusionHead', num_things_classes=NUM_THINGS, num_stuff_classes=2,
                             test_cfg=test_cfg))


def _random_outputs(seed: int, batch: int = 2, queries: int = 9):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, queries, C + 1, generator=g) * 4, torch.randn(batch, queries, 6, 8, generator=g) * 4


def test_head_crops_padding_and_resizes_to_ori_shape():
    cls, masks = _random_outputs(0)
    metas = [dict(batch_input_shape=(24, 32), img_shape=(22, 29), ori_shape=(33, 40)),
             dict(batch_input_shape=(24, 32), img_shape=(24, 17), ori_shape=(48, 34))]
    results = _head(4).predict(cls, masks, metas, rescale=True)
    for b, (res, meta) in enumerate(zip(results, metas)):
        full = torch.nn.functional.interpolate(masks[b:b + 1], size=(24, 32), mode='bilinear', align_corners=False)
        h, w = meta['img_shape']
        ref = torch.nn.functional.interpolate(full[0, :, None, :h, :w], size=meta['ori_shape'], mode='bilinear',
                                              align_corners=False)[:, 0]
        assert res['pan_results'].sem_seg.shape == (1, ) + meta['ori_shape']
        assert torch.equal(res['pan_results'].sem_seg[0], panoptic_inference(cls[b], ref, NUM_THINGS, 0.5))
        torch.testing.assert_close(res['sem_results'].seg_logits, semantic_inference(cls[b], ref))
        assert torch.equal(res['sem_results'].sem_seg[0], res['sem_results'].seg_logits.argmax(0))
        assert torch.equal(res['ins_results'].masks, instance_inference(cls[b], ref, NUM_THINGS).masks)
    unscaled = _head(4).predict(cls, masks, metas, rescale=False)
    assert unscaled[1]['pan_results'].sem_seg.shape == (1, 24, 17)
    assert unscaled[1]['ins_results'].masks.shape[-2:] == (24, 17)


@pytest.mark.parametrize('filter_low_score', [False, True])
def test_head_results_do_not_depend_on_chunk_size(filter_low_score):
    cls, masks = _random_outputs(1, queries=11)
    metas = [dict(batch_input_shape=(24, 32), img_shape=(20, 30), ori_shape=(30, 45))] * 2
    a = _head(1, filter_low_score=filter_low_score).predict(cls, masks, metas)
    b = _head(64, filter_low_score=filter_low_score).predict(cls, masks, metas)
    for ra, rb in zip(a, b):
        assert torch.equal(ra['pan_results'].sem_seg, rb['pan_results'].sem_seg)
        assert torch.equal(ra['ins_results'].masks, rb['ins_results'].masks)
        torch.testing.assert_close(ra['ins_results'].scores, rb['ins_results'].scores)
        torch.testing.assert_close(ra['sem_results'].seg_logits, rb['sem_results'].seg_logits)


def test_head_only_returns_enabled_tasks():
    cls, masks = _random_outputs(2, batch=1)
    head = MODELS.build(dict(type='M2FFusionHead', num_things_classes=2, num_stuff_classes=2,
                             test_cfg=dict(panoptic_on=False, instance_on=True)))
    (res, ) = head.predict(cls, masks, [dict(batch_input_shape=(24, 32), img_shape=(24, 32), ori_shape=(24, 32))])
    assert set(res) == {'ins_results'}
    assert res['ins_results'].bboxes.shape == (len(res['ins_results']), 4)


def test_instance_mask_scores_are_the_mean_sigmoid_over_each_masks_positive_pixels():
    """Computed one query at a time (temporaries of one map), the scores equal the formula over the whole
    [Q, H, W] stack: class probability x mean sigmoid of the mask over its positive pixels."""
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        cls, masks = torch.randn(9, C + 1, generator=g) * 4, torch.randn(9, 37, 53, generator=g) * 4
        got = instance_inference(cls, masks, NUM_THINGS, max_per_image=20, chunk=4)
        binary = (masks > 0).float()
        mask_score = (masks.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
        probs, idx = torch.softmax(cls, -1)[:, :-1].flatten().topk(20)
        labels, query = idx % C, idx // C
        thing = labels < NUM_THINGS
        assert torch.equal(got.labels, labels[thing])
        assert torch.equal(got.scores, probs[thing] * mask_score[query[thing]])
        assert torch.equal(got.masks, masks[query[thing]] > 0)
