"""Matching costs against explicit loops, Hungarian assignment, assigner edge cases."""
import itertools
import math
import warnings

import pytest
import torch

from m2f_mm.models.criterion import M2FCriterion
from m2f_mm.models.matching import (M2FHungarianMatcher, class_cost, dice_cost,
                                    hungarian_match, sigmoid_bce_cost)
from m2f_mm.registry import TASK_UTILS


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_class_cost_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0), 0.0], [1.0, 2.0, 3.0]])
    labels = torch.tensor([1, 0, 1])
    cost = class_cost(logits, labels)
    assert cost.shape == (2, 3) and cost.dtype == torch.float32
    assert cost[0].tolist() == pytest.approx([-0.6, -0.2, -0.6])
    z = math.exp(1) + math.exp(2) + math.exp(3)
    assert cost[1].tolist() == pytest.approx([-math.exp(2) / z, -math.exp(1) / z, -math.exp(2) / z])


def test_sigmoid_bce_cost_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(3, 5) * 2
    targets = torch.tensor([[1., 0., 1., 1., 0.], [0.25, 0.5, 0., 1., 0.75]])
    cost = sigmoid_bce_cost(logits, targets)
    assert cost.shape == (3, 2)
    for q in range(3):
        for g in range(2):
            total = 0.0
            for p in range(5):
                s, t = sig(float(logits[q, p])), float(targets[g, p])
                total += -(t * math.log(s) + (1 - t) * math.log(1 - s))
            assert float(cost[q, g]) == pytest.approx(total / 5, rel=1e-5)


def test_dice_cost_by_hand():
    torch.manual_seed(1)
    logits = torch.randn(4, 6)
    targets = (torch.rand(3, 6) > 0.5).float()
    targets[2] = 0  # empty target: dice = 1 - 1 / (sum p + 1)
    cost = dice_cost(logits, targets)
    assert cost.shape == (4, 3)
    for q in range(4):
        probs = [sig(float(v)) for v in logits[q]]
        for g in range(3):
            t = targets[g].tolist()
            inter = sum(p * tt for p, tt in zip(probs, t))
            expected = 1 - (2 * inter + 1) / (sum(probs) + sum(t) + 1)
            assert float(cost[q, g]) == pytest.approx(expected, rel=1e-5)


def test_hungarian_match_known_optimum_and_shapes():
    cost = torch.tensor([[4., 1., 3.], [2., 0., 5.], [3., 2., 2.]])
    rows, cols = hungarian_match(cost)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 2]  # 1 + 2 + 2 = 5 is optimal
    tall = torch.tensor([[9., 9.], [1., 9.], [9., 1.], [9., 9.]])  # Q > G
    rows, cols = hungarian_match(tall)
    assert rows.tolist() == [1, 2] and cols.tolist() == [0, 1] and rows.dtype == torch.long
    wide = tall.t()  # Q < G: matches min(Q, G)
    rows, cols = hungarian_match(wide)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 2]
    rows, cols = hungarian_match(torch.zeros(5, 0))
    assert rows.numel() == 0 and cols.numel() == 0
    with pytest.raises(ValueError, match='non-finite'):
        hungarian_match(torch.tensor([[1., float('nan')], [0., 1.]]))


def _inputs(q=6, g=3, p=40, c=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(q, c + 1, generator=gen), torch.randn(q, p, generator=gen) * 3,
            torch.randint(0, c, (g, ), generator=gen), (torch.rand(g, p, generator=gen) > 0.5).float())


def test_assigner_is_the_argmin_of_the_weighted_cost():
    assigner = TASK_UTILS.build(dict(type='M2FHungarianMatcher', cls_weight=2.0, mask_weight=5.0,
                                     dice_weight=5.0))
    cls, pts, labels, gt = _inputs(q=5, g=3)
    query_idx, gt_idx = assigner.assign(cls, pts, labels, gt)
    cost = 2 * class_cost(cls, labels) + 5 * sigmoid_bce_cost(pts, gt) + 5 * dice_cost(pts, gt)
    best = min(((sum(float(cost[q, g]) for q, g in zip(perm, range(3))), perm)
                for perm in itertools.permutations(range(5), 3)))
    got = sorted(zip(gt_idx.tolist(), query_idx.tolist()))
    assert [q for _, q in got] == list(best[1])
    assert query_idx.tolist() == sorted(query_idx.tolist())


def test_assigner_weights_come_from_config():
    cls, pts, labels, gt = _inputs(q=4, g=2, seed=3)
    only_cls = M2FHungarianMatcher(cls_weight=1.0, mask_weight=0.0, dice_weight=0.0)
    query_idx, gt_idx = only_cls.assign(cls, pts, labels, gt)
    expected = hungarian_match(class_cost(cls, labels))
    assert query_idx.tolist() == expected[0].tolist() and gt_idx.tolist() == expected[1].tolist()
    from mmseg.registry import TASK_UTILS as SEG_TASK_UTILS
    seg = SEG_TASK_UTILS.build(dict(type='M2FHungarianMatcher', dice_weight=3.0))
    assert (seg.cls_weight, seg.mask_weight, seg.dice_weight) == (2.0, 5.0, 3.0)


def test_assigner_empty_gt_and_more_gts_than_queries():
    assigner = M2FHungarianMatcher()
    cls, pts, _, _ = _inputs(q=4, g=0)
    query_idx, gt_idx = assigner.assign(cls, pts, torch.zeros(0, dtype=torch.long),
                                        torch.zeros(0, 40))
    assert query_idx.numel() == 0 and gt_idx.numel() == 0 and query_idx.dtype == torch.long
    cls, pts, labels, gt = _inputs(q=3, g=5)
    with pytest.warns(RuntimeWarning, match='5 ground-truth segments but only 3 queries'):
        query_idx, gt_idx = assigner.assign(cls, pts, labels, gt, set_index=2, image_index=1)
    assert query_idx.tolist() == [0, 1, 2] and len(set(gt_idx.tolist())) == 3
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # warned once only
        assigner.assign(cls, pts, labels, gt)


@pytest.mark.parametrize('where,term', [('cls', 'class'), ('nan', 'mask/dice'), ('inf', 'mask')])
def test_assigner_non_finite_cost_names_set_image_and_term(where, term):
    cls, pts, labels, gt = _inputs()
    if where == 'cls':
        cls[2, 1] = float('nan')
    elif where == 'nan':
        pts[1, 5] = float('nan')
    else:  # sigmoid(+-inf) is 0/1, so dice stays finite; BCE does not
        pts[1, 5] = float('inf')
        pts[1, 6] = float('-inf')
    with pytest.raises(ValueError) as info:
        M2FHungarianMatcher().assign(cls, pts, labels, gt, set_index=4, image_index=1)
    message = str(info.value)
    assert 'prediction set 4' in message and 'image 1' in message
    assert f'non-finite {term} cost' in message and 'infeasible' not in message


def test_costs_are_fp32_and_unchanged_under_bf16_autocast():
    cls, pts, labels, gt = _inputs(q=8, g=4, p=64)
    assigner = M2FHungarianMatcher()
    ref_terms = assigner.cost_terms(cls, pts, labels, gt)
    ref = assigner.assign(cls, pts, labels, gt)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        terms = assigner.cost_terms(cls, pts, labels, gt)
        got = assigner.assign(cls, pts, labels, gt)
        for fn in (class_cost(cls, labels), sigmoid_bce_cost(pts, gt), dice_cost(pts, gt)):
            assert fn.dtype == torch.float32
    assert terms.dtype == torch.float32 and not terms.requires_grad
    assert torch.equal(terms, ref_terms)
    assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])


def test_costs_have_no_grad():
    cls, pts, labels, gt = _inputs()
    cls.requires_grad_(True)
    pts.requires_grad_(True)
    assert not M2FHungarianMatcher().cost_terms(cls, pts, labels, gt).requires_grad


def _record_matches(criterion):
    seen = []
    original = criterion.assigner.match_terms

    def recording(terms, **kwargs):
        out = original(terms, **kwargs)
        seen.append((kwargs, out[0].tolist(), out[1].tolist()))
        return out
    criterion.assigner.match_terms = recording
    return seen


def test_image_matched_alone_equals_inside_batch():
    """Per-image matching: image 1's assignment doesn't depend on image 0 being in the batch."""
    torch.manual_seed(0)
    num_points, q, c = 32, 7, 4
    cls = torch.randn(2, q, c + 1)
    masks = torch.randn(2, q, 6, 6) * 2
    labels = [torch.tensor([0, 3, 1, 2]), torch.tensor([2, 1, 0])]
    gts = [torch.rand(4, 24, 24) > 0.6, torch.rand(3, 24, 24) > 0.4]
    batch_criterion = M2FCriterion(num_points=num_points)
    seen_batch = _record_matches(batch_criterion)
    torch.manual_seed(5)
    batch_criterion([cls], [masks], labels, gts)
    alone_criterion = M2FCriterion(num_points=num_points)
    seen_alone = _record_matches(alone_criterion)
    torch.manual_seed(5)
    torch.rand((1, num_points, 2))  # image 0's draw, so image 1 gets the same points
    alone_criterion([cls[1:]], [masks[1:]], labels[1:], gts[1:])
    assert len(seen_batch) == 2 and len(seen_alone) == 1
    assert seen_batch[1][1:] == seen_alone[0][1:]
    assert len(seen_alone[0][1]) == 3


class _IdentityMatcher:
    """A matcher written to docs/CONTRACTS.md only (no inheritance): query g takes GT g."""

    def __init__(self):
        self.calls = []

    def cost_terms(self, cls_logits, mask_point_logits, gt_labels, gt_point_masks):
        return torch.zeros(1, cls_logits.shape[0], gt_labels.shape[0])

    def match_terms(self, terms, *, set_index=None, image_index=None):
        self.calls.append((set_index, image_index))
        m = min(terms.shape[1], terms.shape[2])
        return torch.arange(m), torch.arange(m)


def test_a_custom_matcher_written_to_the_contract_drives_the_criterion():
    torch.manual_seed(0)
    cls = [torch.randn(2, 5, 4) for _ in range(2)]
    masks = [torch.randn(2, 5, 8, 8) for _ in range(2)]
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    gts = [torch.rand(2, 32, 32) > 0.5, torch.rand(1, 32, 32) > 0.5]
    matcher = _IdentityMatcher()
    out = M2FCriterion(num_points=16, assigner=matcher)(cls, masks, labels, gts)
    assert sorted(matcher.calls) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # every set, every image
    # query g took GT g: the class loss equals cross-entropy against those targets
    target = torch.tensor([[0, 2, 3, 3, 3], [1, 3, 3, 3, 3]])
    weight = torch.tensor([1.0, 1.0, 1.0, 0.1])
    expected = torch.nn.functional.cross_entropy(cls[1].flatten(0, 1), target.flatten(), weight=weight) * 2.0
    assert torch.allclose(out['loss_cls'], expected)
