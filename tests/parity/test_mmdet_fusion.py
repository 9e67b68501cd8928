"""Parity with mmdet 3.3's MaskFormerFusionHead (the reference), and the one deliberate difference.

mmdet's path: Mask2FormerHead.predict upsamples the stride-4 logits to batch_input_shape, then
MaskFormerFusionHead.predict crops img_shape and resizes to ori_shape (rescale=True).
"""
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
from mmdet.structures import DetDataSample

from m2f_mm.models.fusion import M2FFusionHead, panoptic_inference

NUM_THINGS, NUM_STUFF = 3, 2
C = NUM_THINGS + NUM_STUFF


def _mmdet(cls, masks, metas, rescale=True, **cfg):
    head = MaskFormerFusionHead(NUM_THINGS, NUM_STUFF, test_cfg=dict(panoptic_on=True, instance_on=True, **cfg))
    samples = [DetDataSample(metainfo=m) for m in metas]
    up = F.interpolate(masks, size=metas[0]['batch_input_shape'], mode='bilinear', align_corners=False)
    return head.predict(cls, up, samples, rescale=rescale)


def _ours(cls, masks, metas, rescale=True, **cfg):
    head = M2FFusionHead(NUM_THINGS, NUM_STUFF, test_cfg=dict(panoptic_on=True, instance_on=True,
                                                               query_chunk_size=3, **cfg))
    return head.predict(cls, masks, metas, rescale=rescale)


def _outputs(seed, batch, queries, hw):
    """Random class logits (some confident) and blob-like masks: a random box of +4 plus noise."""
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(batch, queries, C + 1, generator=g) * 3
    cls[:, :, :C] += torch.randn(batch, queries, 1, generator=g).abs() * 3
    masks = torch.randn(batch, queries, *hw, generator=g) - 4
    y0 = torch.randint(0, hw[0] - 1, (batch, queries), generator=g)
    x0 = torch.randint(0, hw[1] - 1, (batch, queries), generator=g)
    ys, xs = torch.arange(hw[0]).view(1, 1, -1, 1), torch.arange(hw[1]).view(1, 1, 1, -1)
    inside = ((ys >= y0[..., None, None]) & (ys < y0[..., None, None] + hw[0] // 2)
              & (xs >= x0[..., None, None]) & (xs < x0[..., None, None] + hw[1] // 2))
    return cls, masks + 8 * inside


CASES = [  # (seed, batch_input_shape, [(img_shape, ori_shape)], queries)
    (0, (32, 48), [((30, 41), (45, 61)), ((32, 48), (32, 48))], 24),
    (1, (64, 32), [((61, 29), (40, 19)), ((50, 32), (100, 64))], 20),
    (2, (32, 32), [((17, 31), (23, 41))], 30),
]


def _sort_instances(ins):
    """Canonical order (mmdet's top-k is unsorted; empty masks tie at score 0): score, label, box, mask."""
    keys = [(-round(float(s), 5), int(l), tuple(b.tolist()), m.flatten().nonzero()[:, 0].tolist())
            for s, l, b, m in zip(ins.scores, ins.labels, ins.bboxes, ins.masks)]
    return ins[sorted(range(len(keys)), key=keys.__getitem__)]


@pytest.mark.parametrize('seed, pad, shapes, queries', CASES)
@pytest.mark.parametrize('rescale, iou_thr', [(True, 0.8), (True, 0.5), (False, 0.8)])
def test_panoptic_and_instance_match_mmdet(seed, pad, shapes, queries, rescale, iou_thr):
    cls, masks = _outputs(seed, len(shapes), queries, (pad[0] // 4, pad[1] // 4))
    metas = [dict(batch_input_shape=pad, img_shape=i, ori_shape=o) for i, o in shapes]
    theirs = _mmdet(cls, masks, metas, rescale, object_mask_thr=0.5, iou_thr=iou_thr)
    ours = _ours(cls, masks, metas, rescale, object_mask_thr=0.5, iou_thr=iou_thr)
    n_segments = 0
    for t, o in zip(theirs, ours):
        assert torch.equal(t['pan_results'].sem_seg, o['pan_results'].sem_seg)  # bit-exact
        n_segments += len(o['pan_results'].sem_seg.unique())
        ti, oi = _sort_instances(t['ins_results']), _sort_instances(o['ins_results'])
        assert len(ti) == len(oi) > 0
        assert torch.equal(ti.labels, oi.labels)
        assert torch.equal(ti.masks, oi.masks)
        assert torch.equal(ti.bboxes, oi.bboxes)
        torch.testing.assert_close(ti.scores, oi.scores, rtol=1e-6, atol=1e-7)
    assert n_segments > len(shapes)  # the random case exercises real fusion, not all-VOID


@pytest.mark.parametrize('seed', range(4))
def test_filter_low_score_matches_mmdet_up_to_instance_id_gaps(seed):
    cls, masks = _outputs(seed + 10, 2, 25, (8, 8))
    metas = [dict(batch_input_shape=(32, 32), img_shape=(32, 30), ori_shape=(40, 37))] * 2
    theirs = _mmdet(cls, masks, metas, object_mask_thr=0.4, filter_low_score=True)
    ours = _ours(cls, masks, metas, object_mask_thr=0.4, filter_low_score=True)
    for t, o in zip(theirs, ours):
        tp, op = t['pan_results'].sem_seg, o['pan_results'].sem_seg
        assert torch.equal(tp % 1000, op % 1000)
        # same partition; ours numbers instances 1..n without gaps
        assert torch.equal(torch.unique(tp, return_inverse=True)[1], torch.unique(op, return_inverse=True)[1])
        inst = (op[op % 1000 < NUM_THINGS] // 1000).unique().tolist()
        assert inst == list(range(1, len(inst) + 1))


def test_deliberate_difference_empty_filtered_segment_consumes_no_instance_id():
    """Paper (facebookresearch/Mask2Former panoptic_inference) requires the filtered mask to be non-empty;
    mmdet increments the instance id for such a segment and paints nothing, leaving a gap."""
    rows = lambda lo, hi, inside=10.0: torch.full((10, 10), -10.0).index_fill_(0, torch.arange(lo, hi), inside)
    cls = torch.zeros(3, C + 1)
    cls[0, 0], cls[1, 1], cls[2, 0] = 6.0, 5.0, 7.0            # probs 0.992, 0.978, 0.997 (6 classes)
    b = rows(0, 3)                                             # B: prob ~1 on rows 0-2 (area 30) ...
    b[3:] = -0.4                                               # ... and 0.40 on rows 3-9
    masks = torch.stack([rows(0, 5), b, rows(8, 10)])          # A rows 0-4, C rows 8-9; B wins rows 5-7 (30 >= 0.8*30)
    head = MaskFormerFusionHead(NUM_THINGS, NUM_STUFF, test_cfg=dict(filter_low_score=True))
    theirs = head.panoptic_postprocess(cls, masks).sem_seg[0]
    ours = panoptic_inference(cls, masks, NUM_THINGS, filter_low_score=True)
    col = lambda pan: pan[:, 0].tolist()
    assert col(theirs) == [1000] * 5 + [C] * 3 + [3000] * 2   # B consumed id 2
    assert col(ours) == [1000] * 5 + [C] * 3 + [2000] * 2
    # without the filter B keeps rows 5-7 and both number it 2
    theirs = MaskFormerFusionHead(NUM_THINGS, NUM_STUFF, test_cfg={}).panoptic_postprocess(cls, masks).sem_seg[0]
    ours = panoptic_inference(cls, masks, NUM_THINGS)
    assert col(theirs) == col(ours) == [1000] * 5 + [2001] * 3 + [3000] * 2


def test_max_per_image_above_query_class_pairs_keeps_all_instead_of_raising():
    cls, masks = _outputs(3, 1, 4, (8, 8))  # 4 queries x 5 classes = 20 pairs < max_per_image=100
    metas = [dict(batch_input_shape=(32, 32), img_shape=(32, 32), ori_shape=(32, 32))]
    with pytest.raises(RuntimeError):
        _mmdet(cls, masks, metas)
    ins = _ours(cls, masks, metas)[0]['ins_results']
    assert len(ins) == 4 * NUM_THINGS
