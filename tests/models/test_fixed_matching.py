"""Fixed matching (query c <-> class c): hand-computed assignments, inside M2FCriterion, errors."""
import pytest
import torch
import torch.nn.functional as F

from m2f_mm.models.criterion import M2FCriterion, classification_loss
from m2f_mm.models.fixed_matching import M2FFixedMatcher, fixed_match, fixed_match_cost
from m2f_mm.models.matching import hungarian_match
from m2f_mm.registry import TASK_UTILS

C = 4  # classes; no-object = C


def test_fixed_match_by_hand():
    query_idx, gt_idx = fixed_match(torch.tensor([3, 0, 2]), num_queries=5)
    assert query_idx.tolist() == [0, 2, 3] and gt_idx.tolist() == [1, 2, 0]
    query_idx, gt_idx = fixed_match(torch.tensor([1]), num_queries=2)
    assert query_idx.tolist() == [1] and gt_idx.tolist() == [0]
    query_idx, gt_idx = fixed_match(torch.zeros(0, dtype=torch.long), num_queries=3)
    assert query_idx.dtype == gt_idx.dtype == torch.long and query_idx.numel() == gt_idx.numel() == 0


def test_fixed_match_cost_by_hand_and_its_optimum_is_the_fixed_assignment():
    labels = torch.tensor([2, 0])
    cost = fixed_match_cost(3, labels)
    assert cost.tolist() == [[1., 0.], [1., 1.], [0., 1.]]
    torch.manual_seed(0)
    for _ in range(5):
        labels = torch.randperm(6)[:4]
        assert [t.tolist() for t in hungarian_match(fixed_match_cost(7, labels))] == \
            [t.tolist() for t in fixed_match(labels, 7)]


def test_matcher_ignores_predictions_and_builds_from_both_registries():
    from mmseg.registry import TASK_UTILS as SEG_TASK_UTILS
    matcher = TASK_UTILS.build(dict(type='M2FFixedMatcher'))
    assert isinstance(matcher, M2FFixedMatcher)
    assert isinstance(SEG_TASK_UTILS.build(dict(type='M2FFixedMatcher')), M2FFixedMatcher)
    labels, gt_pts = torch.tensor([3, 1]), torch.rand(2, 6)
    torch.manual_seed(0)
    for _ in range(3):
        cls, pts = torch.randn(5, C + 1), torch.randn(5, 6)
        terms = matcher.cost_terms(cls, pts, labels, gt_pts)
        assert terms.shape == (1, 5, 2) and terms.dtype == torch.float32
        for query_idx, gt_idx in (matcher.match_terms(terms, set_index=0, image_index=0),
                                  matcher.assign(cls, pts, labels, gt_pts)):
            assert query_idx.tolist() == [1, 3] and gt_idx.tolist() == [1, 0]
    empty = matcher.assign(torch.randn(5, C + 1), torch.randn(5, 6), torch.zeros(0, dtype=torch.long),
                           torch.zeros(0, 6))
    assert [t.numel() for t in empty] == [0, 0]


def _case(batch_labels, num_queries=C, h=8, size=8, seed=0, num_sets=2):
    """Random predictions and disjoint random GT masks of the given classes."""
    g = torch.Generator().manual_seed(seed)
    cls = [torch.randn(len(batch_labels), num_queries, C + 1, generator=g) for _ in range(num_sets)]
    masks = [torch.randn(len(batch_labels), num_queries, h, h, generator=g) for _ in range(num_sets)]
    gts = []
    for labels in batch_labels:
        owner = torch.randint(0, max(len(labels), 1), (size, size), generator=g)
        gts.append(torch.stack([owner == i for i in range(len(labels))]) if len(labels)
                   else torch.zeros(0, size, size, dtype=torch.bool))
    return cls, masks, [torch.tensor(lab, dtype=torch.long) for lab in batch_labels], gts


def test_criterion_losses_equal_hand_built_fixed_targets():
    """Full-mask losses (h = H, no resampling) against targets built by hand: query c <- class c."""
    batch_labels = [[2, 0], [1, 3, 0], []]
    cls, masks, labels, gts = _case(batch_labels, num_queries=C + 1)
    out = M2FCriterion(full_mask=True, assigner=dict(type='M2FFixedMatcher'))(cls, masks, labels, gts)
    num_masks = 5
    for s, prefix in ((1, ''), (0, 'd0.')):
        target = torch.full((3, C + 1), C)  # query C (beyond the classes) is always no-object
        pred, true = [], []
        for b, labs in enumerate(batch_labels):
            for g, c in enumerate(labs):
                target[b, c] = c
            for c in range(C):  # ordered by (image, query), as the criterion's matched pairs
                if c in labs:
                    pred.append(masks[s][b, c].flatten())
                    true.append(gts[b][labs.index(c)].flatten().float())
        pred, true = torch.stack(pred), torch.stack(true)
        loss_cls = classification_loss(cls[s], target, 0.1) * 2.0
        loss_mask = F.binary_cross_entropy_with_logits(pred, true, reduction='none').mean(1).sum() \
            / num_masks * 5.0
        probs = pred.sigmoid()
        dice = 1 - (2 * (probs * true).sum(1) + 1) / (probs.sum(1) + true.sum(1) + 1)
        loss_dice = dice.sum() / num_masks * 5.0
        assert torch.allclose(out[prefix + 'loss_cls'], loss_cls, rtol=1e-5)
        assert torch.allclose(out[prefix + 'loss_mask'], loss_mask, rtol=1e-5)
        assert torch.allclose(out[prefix + 'loss_dice'], loss_dice, rtol=1e-5)


@pytest.mark.parametrize('full_mask', [True, False])
def test_criterion_equals_hungarian_where_its_optimum_is_the_fixed_assignment(full_mask):
    """Query c confidently predicts class c and the mask of class c: Hungarian finds the fixed
    assignment, so (with the same random draws) every loss is the same."""
    batch_labels = [[3, 1], [0, 1, 2]]
    cls, masks, labels, gts = _case(batch_labels, h=8, size=8)
    for s in range(len(cls)):
        cls[s] = cls[s] * 0.1 + 8.0 * torch.eye(C, C + 1)
        for b, labs in enumerate(batch_labels):
            for g, c in enumerate(labs):
                masks[s][b, c] = torch.where(gts[b][g], 6.0, -6.0)
    kwargs = dict(full_mask=full_mask, num_points=16)
    torch.manual_seed(0)
    fixed = M2FCriterion(assigner=dict(type='M2FFixedMatcher'), **kwargs)(cls, masks, labels, gts)
    torch.manual_seed(0)
    hungarian = M2FCriterion(**kwargs)(cls, masks, labels, gts)
    assert list(fixed) == list(hungarian)
    for key in fixed:
        assert torch.allclose(fixed[key], hungarian[key], rtol=1e-6), key


def test_criterion_follows_classes_not_costs():
    """Where Hungarian would pick another query, fixed matching still targets query c for class c."""
    cls, masks, labels, gts = _case([[1]], num_sets=1)
    cls[0][0] = -5.0
    cls[0][0, 3, 1] = 5.0  # query 3 predicts class 1: Hungarian takes it, fixed takes query 1
    out = M2FCriterion(full_mask=True, assigner=dict(type='M2FFixedMatcher'))(cls, masks, labels, gts)
    expected = classification_loss(cls[0], torch.tensor([[C, 1, C, C]]), 0.1) * 2.0
    assert torch.allclose(out['loss_cls'], expected)
    hungarian = M2FCriterion(full_mask=True, mask_weight=0.0, dice_weight=0.0)(cls, masks, labels, gts)
    assert float(hungarian['loss_cls']) < float(out['loss_cls'])


def test_too_few_queries_names_both_numbers_and_the_fix():
    matcher = M2FFixedMatcher()
    with pytest.raises(ValueError, match=r'num_queries=3 and num_classes=4: set num_queries=4'):
        matcher.cost_terms(torch.randn(3, C + 1), torch.randn(3, 6), torch.tensor([0]), torch.rand(1, 6))
    with pytest.raises(ValueError, match=r'num_queries >= num_classes'):
        matcher.assign(torch.randn(3, C + 1), torch.randn(3, 6), torch.tensor([0]), torch.rand(1, 6))
    cls, masks, labels, gts = _case([[0]], num_queries=3)
    with pytest.raises(ValueError, match=r'num_queries=3 and num_classes=4'):
        M2FCriterion(full_mask=True, assigner=dict(type='M2FFixedMatcher'))(cls, masks, labels, gts)
    with pytest.raises(ValueError, match=r'gt label 4 but only num_queries=4'):
        fixed_match(torch.tensor([4]), num_queries=4)
    with pytest.raises(ValueError, match=r'gt label -1'):
        fixed_match(torch.tensor([-1]), num_queries=4)


def test_two_segments_of_one_class_is_a_one_line_error():
    with pytest.raises(ValueError, match=r'2 ground-truth segments of class 1 .*semantic') as info:
        fixed_match(torch.tensor([1, 0, 1]), num_queries=4)
    assert '\n' not in str(info.value)
    cls, masks, labels, gts = _case([[0], [2, 3, 2]], num_sets=1)
    with pytest.raises(ValueError, match=r'class 2 .*M2FHungarianMatcher \(prediction set 0, image 1\)'):
        M2FCriterion(num_points=16, assigner=dict(type='M2FFixedMatcher'))(cls, masks, labels, gts)


def test_match_terms_refuses_foreign_terms():
    matcher = M2FFixedMatcher()
    with pytest.raises(ValueError, match=r'\[1, Q, G\]'):
        matcher.match_terms(torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match=r'its own cost_terms'):
        matcher.match_terms(torch.rand(1, 4, 2) + 0.5)
