"""Loss functions against explicit loops; M2FCriterion behaviour on edge cases."""
import itertools
import math
import os
import subprocess
import sys
import tempfile

import pytest
import torch

from m2f_mm.models.criterion import (M2FCriterion, classification_loss, dice_loss,
                                  num_masks_across_ranks, sigmoid_bce_loss)
from m2f_mm.registry import MODELS


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def bce(x: float, t: float) -> float:
    s = sig(x)
    return -(t * math.log(s) + (1 - t) * math.log(1 - s))


def dice(xs, ts) -> float:
    ps = [sig(float(x)) for x in xs]
    ts = [float(t) for t in ts]
    return 1 - (2 * sum(p * t for p, t in zip(ps, ts)) + 1) / (sum(ps) + sum(ts) + 1)


def test_sigmoid_bce_and_dice_loss_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0], [-3.0, 1.5, 0.2, 4.0], [0.1, 0.1, -0.1, 1.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    num_masks = 2.5
    expected_bce = sum(sum(bce(float(x), float(t)) for x, t in zip(lr, tr)) / 4
                       for lr, tr in zip(logits, targets)) / num_masks
    expected_dice = sum(dice(lr, tr) for lr, tr in zip(logits, targets)) / num_masks
    assert float(sigmoid_bce_loss(logits, targets, num_masks)) == pytest.approx(expected_bce, rel=1e-6)
    assert float(dice_loss(logits, targets, num_masks)) == pytest.approx(expected_dice, rel=1e-6)


def test_classification_loss_weighted_mean_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4)  # C = 3, no-object = 3
    labels = torch.tensor([[0, 3, 3], [2, 3, 1]])
    num, den = 0.0, 0.0
    for b in range(2):
        for q in range(3):
            row = logits[b, q].tolist()
            ce = -row[labels[b, q]] + math.log(sum(math.exp(v) for v in row))
            w = 0.1 if labels[b, q] == 3 else 1.0
            num, den = num + w * ce, den + w
    assert float(classification_loss(logits, labels, 0.1)) == pytest.approx(num / den, rel=1e-6)


_RANK_SCRIPT = """
import sys, torch, torch.distributed as dist
from m2f_mm.models.criterion import num_masks_across_ranks
rank, path, count = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
dist.init_process_group('gloo', init_method='file://' + path, rank=rank, world_size=2)
print(num_masks_across_ranks(count, torch.device('cpu')), num_masks_across_ranks(0, torch.device('cpu')))
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_num_masks_across_ranks():
    assert num_masks_across_ranks(0, torch.device('cpu')) == 1.0
    assert num_masks_across_ranks(3, torch.device('cpu')) == 3.0
    # two real gloo ranks with uneven counts (1 and 4), and with a rank holding no mask (0 and 3)
    for counts, mean in (((1, 4), '2.5'), ((0, 3), '1.5')):
        with tempfile.TemporaryDirectory() as tmp:
            store = os.path.join(tmp, 'store')
            procs = [subprocess.Popen([sys.executable, '-c', _RANK_SCRIPT, str(rank), store, str(n)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=dict(os.environ, OMP_NUM_THREADS='1'))
                     for rank, n in enumerate(counts)]
            outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        # every rank gets the mean; with no GT on any rank the count is still 1
        assert [out.strip().splitlines()[-1] for out, _ in outs] == [f'{mean} 1.0', f'{mean} 1.0']


# -- criterion ------------------------------------------------------------------------------

C, Q, H = 4, 5, 16  # classes, queries, GT resolution (mask logits at H // 4)


def _preds(num_sets=2, batch=2, h=H // 4, seed=0, requires_grad=True):
    gen = torch.Generator().manual_seed(seed)
    cls = [torch.randn(batch, Q, C + 1, generator=gen).requires_grad_(requires_grad)
           for _ in range(num_sets)]
    masks = [(torch.randn(batch, Q, h, h, generator=gen) * 2).requires_grad_(requires_grad)
             for _ in range(num_sets)]
    return cls, masks


def _gts(batch=2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    labels = [torch.randint(0, C, (2 + b, ), generator=gen) for b in range(batch)]
    masks = [torch.rand(2 + b, H, H, generator=gen) > 0.5 for b in range(batch)]
    return labels, masks


def test_criterion_builds_from_both_registries_and_names_keys():
    from mmseg.registry import MODELS as SEG_MODELS
    criterion = MODELS.build(dict(type='M2FCriterion', num_points=16))
    assert isinstance(SEG_MODELS.build(dict(type='M2FCriterion')), M2FCriterion)
    out = criterion(*_preds(num_sets=3), *_gts())
    assert list(out) == ['loss_cls', 'loss_mask', 'loss_dice', 'd0.loss_cls', 'd0.loss_mask',
                         'd0.loss_dice', 'd1.loss_cls', 'd1.loss_mask', 'd1.loss_dice']
    assert all(v.dim() == 0 and v.dtype == torch.float32 and bool(torch.isfinite(v))
               for v in out.values())


def test_criterion_full_mask_equals_brute_force_by_hand():
    """With h = H the full-mask variant is exactly: brute-force matching + per-pixel losses."""
    cls, masks = _preds(num_sets=1, batch=1, h=H)
    labels, gts = _gts(batch=1)
    out = {k: v.detach() for k, v in M2FCriterion(full_mask=True)(cls, masks, labels, gts).items()}
    logits, mlog, lab, gt = cls[0][0].detach(), masks[0][0].detach().flatten(1), labels[0], \
        gts[0].flatten(1).float()
    probs = logits.softmax(-1)

    def pair_cost(q, g):
        return (-2 * float(probs[q, lab[g]]) +
                5 * sum(bce(float(x), float(t)) for x, t in zip(mlog[q], gt[g])) / mlog.shape[1] +
                5 * dice(mlog[q], gt[g]))
    best = min(itertools.permutations(range(Q), len(lab)),
               key=lambda perm: sum(pair_cost(q, g) for g, q in enumerate(perm)))
    num_masks = len(lab)
    target = [C] * Q
    for g, q in enumerate(best):
        target[q] = int(lab[g])
    loss_cls = classification_loss(logits[None], torch.tensor([target]), 0.1) * 2
    loss_mask = 5 * sum(sum(bce(float(x), float(t)) for x, t in zip(mlog[q], gt[g])) / mlog.shape[1]
                        for g, q in enumerate(best)) / num_masks
    loss_dice = 5 * sum(dice(mlog[q], gt[g]) for g, q in enumerate(best)) / num_masks
    assert float(out['loss_cls']) == pytest.approx(float(loss_cls), rel=1e-5)
    assert float(out['loss_mask']) == pytest.approx(loss_mask, rel=1e-5)
    assert float(out['loss_dice']) == pytest.approx(loss_dice, rel=1e-5)


def test_empty_gt_batch_gives_zero_mask_losses_with_gradient():
    cls, masks = _preds()
    empty = [torch.zeros(0, dtype=torch.long)] * 2
    out = M2FCriterion(num_points=16)(cls, masks, empty, [torch.zeros(0, H, H, dtype=torch.bool)] * 2)
    for prefix in ('', 'd0.'):
        assert out[prefix + 'loss_mask'].item() == 0.0 and out[prefix + 'loss_dice'].item() == 0.0
        assert out[prefix + 'loss_cls'].item() > 0
    sum(out.values()).backward()
    for m in masks:  # gradient reaches the mask logits (zeros), so DDP sees every parameter used
        assert m.grad is not None and float(m.grad.abs().sum()) == 0.0
    assert all(float(c.grad.abs().sum()) > 0 for c in cls)


def test_empty_image_in_batch_changes_no_mask_loss():
    """An image without GT adds no-object class targets and nothing else."""
    cls, masks = _preds(num_sets=1)
    labels, gts = _gts()
    labels[0], gts[0] = torch.zeros(0, dtype=torch.long), torch.zeros(0, H, H, dtype=torch.bool)
    torch.manual_seed(7)
    both = M2FCriterion(num_points=32)(cls, masks, labels, gts)
    torch.manual_seed(7)
    torch.rand((1, 32, 2))  # image 0's matching draw
    alone = M2FCriterion(num_points=32)([cls[0][1:]], [masks[0][1:]], labels[1:], gts[1:])
    assert both['loss_mask'].item() == pytest.approx(alone['loss_mask'].item(), rel=1e-6)
    assert both['loss_dice'].item() == pytest.approx(alone['loss_dice'].item(), rel=1e-6)
    assert both['loss_cls'].item() != pytest.approx(alone['loss_cls'].item())


@pytest.mark.parametrize('kind', ['one_pixel', 'whole_image'])
def test_extreme_masks_give_finite_losses_and_grads(kind):
    cls, masks = _preds()
    labels = [torch.tensor([1]), torch.tensor([3, 0])]
    gts = [torch.zeros(1, H, H, dtype=torch.bool), torch.zeros(2, H, H, dtype=torch.bool)]
    if kind == 'one_pixel':
        gts[0][0, 3, 7] = gts[1][0, 0, 0] = gts[1][1, H - 1, H - 1] = True
    else:
        gts[0][:] = True
        gts[1][0] = True
    out = M2FCriterion(num_points=64)(cls, masks, labels, gts)
    assert all(bool(torch.isfinite(v)) for v in out.values())
    sum(out.values()).backward()
    assert all(bool(torch.isfinite(t.grad).all()) for t in cls + masks)


@pytest.mark.parametrize('set_index,image,what,name', [(1, 1, 'mask_logits', "'d1'"),
                                                       (3, 0, 'cls_logits', "'final'")])
def test_non_finite_predictions_poison_exactly_their_set(set_index, image, what, name):
    """Non-finite logits are named (set and image) and make that set's three terms NaN, no other.

    The criterion does not raise: under DDP every rank must run backward; the guard hook decides.
    """
    cls, masks = _preds(num_sets=4, requires_grad=False)
    target = masks if what == 'mask_logits' else cls
    target[set_index][image, 2, 0] = float('nan')
    with pytest.warns(RuntimeWarning) as record:
        out = M2FCriterion(num_points=16)(cls, masks, *_gts())
    message = ' '.join(str(r.message) for r in record)
    assert what in message and f'prediction set {name}' in message and f'image {image}' in message
    prefix = '' if set_index == 3 else f'd{set_index}.'
    bad = {prefix + k for k in ('loss_cls', 'loss_mask', 'loss_dice')}
    assert {k for k, v in out.items() if not torch.isfinite(v)} == bad


def test_more_gts_than_queries_and_bad_labels():
    cls, masks = _preds(num_sets=1)
    labels = [torch.arange(7) % C, torch.tensor([1])]
    gts = [torch.rand(7, H, H) > 0.5, torch.rand(1, H, H) > 0.5]
    with pytest.warns(RuntimeWarning, match='7 ground-truth segments but only 5 queries'):
        out = M2FCriterion(num_points=16)(cls, masks, labels, gts)
    assert all(bool(torch.isfinite(v)) for v in out.values())
    with pytest.raises(ValueError, match=r'image 1.*\[0, 4\)'):
        M2FCriterion(num_points=16)(cls, masks, [labels[0], torch.tensor([C])], gts)
    with pytest.raises(ValueError, match='image 0'):
        M2FCriterion(num_points=16)(cls, masks, labels, [gts[0][:3], gts[1]])


def test_losses_are_fp32_under_bf16_autocast():
    cls, masks = _preds()
    labels, gts = _gts()
    criterion = M2FCriterion(num_points=32)
    torch.manual_seed(3)
    ref = criterion(cls, masks, labels, gts)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        torch.manual_seed(3)
        same = criterion(cls, masks, labels, gts)  # fp32 inputs: autocast must change nothing
        bf16_cls = [c.to(torch.bfloat16) for c in cls]
        bf16_masks = [m.to(torch.bfloat16) for m in masks]
        torch.manual_seed(3)
        low = criterion(bf16_cls, bf16_masks, labels, gts)
    torch.manual_seed(3)
    upcast = criterion([c.float() for c in bf16_cls], [m.float() for m in bf16_masks], labels, gts)
    for key in ref:
        assert same[key].dtype == torch.float32 and low[key].dtype == torch.float32
        assert torch.equal(same[key], ref[key])
        assert torch.equal(low[key], upcast[key])  # bf16 values, fp32 arithmetic
    sum(low.values()).backward()
    assert masks[0].grad is not None and bool(torch.isfinite(masks[0].grad).all())
