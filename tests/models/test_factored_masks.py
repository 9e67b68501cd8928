"""Mask logits kept as their factors (mask embeddings x per-pixel embeddings): the criterion's point logits,
matched logits and finiteness checks equal the dense order's; through the head, in float64, every
attention mask, every set's matching and every loss term and gradient are the dense order's."""
import os.path as osp
import sys

import pytest
import torch

from m2f_mm.models import criterion as criterion_module
from m2f_mm.models.factored_masks import (FactoredMasks, image_is_finite, image_mask_logits, image_point_logits,
                                          matched_mask_logits, per_image_finite_sums)
from m2f_mm.models.head import M2FHead
from m2f_mm.models.point_sampling import sample_at_points

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # the helpers beside this file (importlib import mode)
from test_ablation_switches import _feats, _gt_samples, _head  # noqa: E402
from test_head import THINGS, STUFF  # noqa: E402


def _factors(batch=2, queries=5, width=6, height=8, wide=10, dtype=torch.float64):
    torch.manual_seed(0)
    return FactoredMasks(torch.randn(batch, queries, width, dtype=dtype), torch.randn(batch, width, height, wide,
                                                                                       dtype=dtype))


@pytest.mark.parametrize('num_points', [7, 80, 200])  # fewer than, as many as, more than the 8 x 10 pixels
def test_point_logits_equal_sampling_the_dense_logits(num_points):
    masks = _factors()
    dense = masks.dense()
    coords = torch.rand(1, num_points, 2, dtype=torch.float64)
    for image in range(2):
        got = image_point_logits(masks, image, coords.float())
        want = sample_at_points(dense[image].float(), coords.float())
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # in float64 the two orders agree to rounding (the method choice does not show)
        exact = masks.embeds[image] @ sample_at_points(masks.pixels[image], coords)
        torch.testing.assert_close(exact, sample_at_points(dense[image], coords), rtol=1e-12, atol=1e-12)
        assert torch.equal(image_point_logits(dense.float(), image, coords.float()), want)


def test_matched_rows_finiteness_and_sums():
    masks = _factors()
    dense = masks.dense()
    rows = torch.tensor([3, 0])
    torch.testing.assert_close(image_mask_logits(masks, 1, rows), dense[1, rows].float())
    assert image_mask_logits(masks, 0).shape == (5, 8, 10)
    # the matched rows of the batch, ordered by (image, row), with the gradient of the dense indexing
    masks = FactoredMasks(masks.embeds.clone().requires_grad_(), masks.pixels.clone().requires_grad_())
    rows = [torch.tensor([4, 1]), torch.tensor([2])]
    got = matched_mask_logits(masks, rows)
    want = matched_mask_logits(masks.dense(), rows)
    torch.testing.assert_close(got, want)
    assert torch.equal(want, masks.dense()[[0, 0, 1], [4, 1, 2]].float())
    weights = torch.randn_like(got)
    grads = [torch.autograd.grad((value * weights).sum(), masks) for value in (got, want)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    assert matched_mask_logits(masks, [torch.tensor([], dtype=torch.long)] * 2).shape == (0, 8, 10)
    masks = FactoredMasks(masks.embeds.detach(), masks.pixels.detach())
    assert torch.isfinite(per_image_finite_sums(masks)).all() and image_is_finite(masks, 0)
    masks.pixels[1, 2, 3, 4] = float('nan')
    sums = per_image_finite_sums(masks)
    assert torch.isfinite(sums[0]) and not torch.isfinite(sums[1])
    assert image_is_finite(masks, 0) and not image_is_finite(masks, 1)
    assert not torch.isfinite(per_image_finite_sums(masks.dense())[1])


def _double_head(**kwargs) -> M2FHead:
    """The test head in float64 after its pixel decoder (the deformable-attention op runs in float32)."""
    head = _head(**kwargs).double()
    with torch.no_grad():
        for p in head.parameters():  # non-degenerate weights: masks that block some keys, not all
            p.add_(torch.randn_like(p) * 0.05)
    head.pixel_decoder.float()
    head.pixel_decoder.register_forward_hook(lambda m, args, out: (out[0].double(), [x.double() for x in out[1]]))
    return head


def _loss_and_grads(head: M2FHead, order: str, monkeypatch):
    head.train_masks_of = order
    matches, blocked = [], []
    assigner = head.criterion.assigner
    original = assigner.match_terms

    def recording(terms, **kwargs):
        out = original(terms, **kwargs)
        matches.append(tuple(t.tolist() for t in out))
        return out
    monkeypatch.setattr(assigner, 'match_terms', recording)
    hooks = [layer.register_forward_hook(lambda m, args, out: blocked.append(args[4]))
             for layer in head.transformer_decoder.layers]
    head.zero_grad()
    torch.manual_seed(7)  # the same random points for both orders
    losses = head.loss(_feats(), _gt_samples())
    sum(losses.values()).backward()
    for hook in hooks:
        hook.remove()
    monkeypatch.setattr(assigner, 'match_terms', original)
    grads = {n: p.grad.clone() for n, p in head.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads, matches, blocked


@pytest.mark.parametrize('criterion', [
    dict(),  # the paper's: matching and losses on points
    dict(match_on='masks', loss_on='points'),
    dict(match_on='points', loss_on='masks'),
    dict(full_mask=True),
    dict(num_points=500),  # more points than the 16 x 24 stride-4 pixels: matching through the dense logits
])
def test_factored_training_equals_the_dense_order_in_float64(criterion, monkeypatch):
    head = _double_head(criterion=dict(dict(type='M2FCriterion', num_points=64), **criterion))
    dense = _loss_and_grads(head, 'every_set', monkeypatch)
    factored = _loss_and_grads(head, 'factors', monkeypatch)
    (d_losses, d_grads, d_matches, d_blocked), (f_losses, f_grads, f_matches, f_blocked) = dense, factored
    assert len(d_losses) == 3 * 6 and set(d_losses) == set(f_losses)  # 5 layers + set 0, 3 terms each
    for key in d_losses:
        torch.testing.assert_close(f_losses[key], d_losses[key], rtol=1e-10, atol=1e-12, msg=key)
    assert len(d_matches) == 6 * 2 and f_matches == d_matches  # every set, every image: the same pairs
    assert len(d_blocked) == 5 and all(torch.equal(a, b) for a, b in zip(d_blocked, f_blocked))
    assert any(bool(b.any()) for b in d_blocked)
    assert set(d_grads) == set(f_grads) and len(d_grads) > 20
    for name in d_grads:  # the pixel decoder's float32 parameters to float32 precision
        tol = 1e-8 if d_grads[name].dtype == torch.float64 else 1e-5
        torch.testing.assert_close(f_grads[name], d_grads[name], rtol=tol, atol=tol * 1e-2, msg=name)


def test_head_refuses_an_unknown_train_mask_order():
    with pytest.raises(ValueError, match="train_mask_order='sparse'"):
        _head(train_mask_order='sparse')
    assert _head(train_mask_order='dense').train_masks_of == 'every_set'
    assert _head().train_masks_of == 'factors'


def test_factored_sets_with_non_finite_embeddings_are_not_matched_and_poison_their_set():
    """A NaN in one image's mask embeddings: that image is not matched and the set's terms are NaN, with
    the same warning as for dense logits."""
    masks = _factors(queries=4, width=3, height=16, wide=24, dtype=torch.float32)
    masks.embeds[1, 2, 0] = float('nan')
    cls = torch.randn(2, 4, THINGS + STUFF + 1)
    labels = [torch.tensor([0, 1]), torch.tensor([2])]
    gt = [torch.zeros(2, 64, 96, dtype=torch.bool), torch.ones(1, 64, 96, dtype=torch.bool)]
    gt[0][0, :32] = True
    gt[0][1, 32:] = True
    criterion = criterion_module.M2FCriterion(num_classes=THINGS + STUFF, num_points=32)
    with pytest.warns(RuntimeWarning, match="non-finite \\(NaN/inf\\) mask_logits in prediction set 'final', image 1"):
        losses = criterion([cls], [masks], labels, gt)
    assert all(torch.isnan(v) for v in losses.values())
