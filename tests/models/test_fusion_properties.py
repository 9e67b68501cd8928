"""Property tests of the fusion functions on many seeded random outputs: no crash, invariants hold.

Random shapes (Q, C, T things, H x W), logit scales from tiny to saturating, thresholds from 0 to 1,
chunk sizes 1..Q+1. Every pixel of a panoptic map is one segment or VOID; instances are thing
classes with scores in [0, 1] and boxes inside the image; semantic scores are finite and bounded.
"""
import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET

from m2f_mm.models.fusion import instance_inference, panoptic_inference, semantic_inference

CASES = 120


def random_outputs(seed: int):
    rng = np.random.default_rng(seed)
    q, c, h, w = (int(rng.integers(1, 12)), int(rng.integers(1, 6)), int(rng.integers(1, 20)), int(rng.integers(1, 20)))
    things = int(rng.integers(0, c + 1))
    gen = torch.Generator().manual_seed(seed)
    scale = float(10 ** rng.uniform(-2, 2))
    cls = torch.randn(q, c + 1, generator=gen) * scale
    masks = torch.randn(q, h, w, generator=gen) * scale
    if rng.random() < 0.2:                      # all masks empty or all full
        masks = masks.abs() * (1 if rng.random() < 0.5 else -1)
    return rng, cls, masks, things


@pytest.mark.parametrize('seed', range(CASES))
def test_panoptic_map_partitions_the_image(seed):
    rng, cls, masks, things = random_outputs(seed)
    q, c = cls.shape[0], cls.shape[1] - 1
    pan = panoptic_inference(cls, masks, things, object_mask_thr=float(rng.uniform(0, 1)),
                             iou_thr=float(rng.uniform(0, 1)), filter_low_score=bool(rng.random() < 0.5),
                             chunk=int(rng.integers(1, q + 2))).numpy()
    assert pan.shape == tuple(masks.shape[1:])
    labels, instances = pan % INSTANCE_OFFSET, pan // INSTANCE_OFFSET
    assert ((labels >= 0) & (labels <= c)).all()                   # a class, or VOID = C
    assert (instances[labels == c] == 0).all()                     # VOID carries no instance
    assert (instances[(labels >= things) & (labels < c)] == 0).all()  # stuff: one segment per class
    thing_ids = np.unique(instances[labels < things])
    assert (thing_ids >= 1).all() and len(thing_ids) <= q          # at most one thing segment per query
    for inst in thing_ids:                                         # a thing segment has one class
        assert len(np.unique(labels[(instances == inst) & (labels < things)])) == 1


@pytest.mark.parametrize('seed', range(CASES))
def test_instances_are_ranked_things_inside_the_image(seed):
    rng, cls, masks, things = random_outputs(seed)
    max_per_image = int(rng.integers(1, 30))
    out = instance_inference(cls, masks, things, max_per_image=max_per_image,
                             chunk=int(rng.integers(1, cls.shape[0] + 2)))
    n, (h, w) = len(out), masks.shape[1:]
    assert n <= max_per_image and out.masks.shape == (n, h, w) and out.masks.dtype == torch.bool
    assert ((out.labels >= 0) & (out.labels < things)).all()
    assert ((out.scores >= 0) & (out.scores <= 1)).all()  # class probability x mask score
    boxes = out.bboxes
    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
    assert (boxes >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()


@pytest.mark.parametrize('seed', range(CASES))
def test_semantic_scores_are_bounded(seed):
    rng, cls, masks, _ = random_outputs(seed)
    scores = semantic_inference(cls, masks, chunk=int(rng.integers(1, cls.shape[0] + 2)))
    q, c = cls.shape[0], cls.shape[1] - 1
    assert scores.shape == (c, *masks.shape[1:]) and bool(torch.isfinite(scores).all())
    # sum_q softmax(cls)[q, c] * sigmoid(mask)[q]: each term in [0, 1], all classes together at most Q
    assert (scores >= 0).all() and (scores.sum(0) <= q + 1e-4).all()
