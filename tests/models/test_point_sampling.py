"""Point sampling: exact values on tiny maps, uncertainty selection, RNG parity with mmdet."""
import pytest
import torch
from mmdet.models.utils import get_uncertain_point_coords_with_randomness

from m2f_mm.models.point_sampling import (draw_importance_candidates, importance_sample_points,
                                          sample_at_points, select_uncertain_points,
                                          uniform_points)


def bilinear(map_hw: torch.Tensor, x: float, y: float) -> float:
    """Reference: grid_sample(align_corners=False, zero padding) at normalised (x, y), by hand."""
    h, w = map_hw.shape
    px, py = x * w - 0.5, y * h - 0.5  # pixel-centre coordinates
    x0, y0 = int(torch.floor(torch.tensor(px))), int(torch.floor(torch.tensor(py)))
    total = 0.0
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * float(map_hw[yy, xx])
    return total


def test_uniform_points_is_mmdets_per_image_draw():
    torch.manual_seed(3)
    ours = uniform_points(1, 50, 'cpu')
    torch.manual_seed(3)
    ref = torch.rand((1, 50, 2))
    assert ours.shape == (1, 50, 2) and ours.dtype == torch.float32
    assert torch.equal(ours, ref)
    assert bool((ours >= 0).all() and (ours < 1).all())


def test_sample_at_points_hand_values():
    grid = torch.tensor([[0., 1.], [2., 3.]])
    coords = torch.tensor([[[0.5, 0.5], [0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.4, 0.6]]])
    out = sample_at_points(grid[None], coords)
    assert out.shape == (1, 5)
    # centre = mean of the four pixels; pixel centres = the pixels themselves (x then y)
    assert out[0, :4].tolist() == pytest.approx([1.5, 0.0, 1.0, 2.0])
    assert float(out[0, 4]) == pytest.approx(bilinear(grid, 0.4, 0.6))
    # near the border grid_sample pads with zeros
    edge = sample_at_points(grid[None], torch.tensor([[[0.0, 0.0], [0.9, 0.1]]]))
    assert edge[0].tolist() == pytest.approx([bilinear(grid, 0.0, 0.0), bilinear(grid, 0.9, 0.1)])


def test_sample_at_points_shared_coords_and_bool_chunks():
    torch.manual_seed(0)
    masks = torch.rand(37, 9, 11) > 0.5  # more than one chunk of bool masks
    coords = torch.rand(1, 20, 2)
    shared = sample_at_points(masks, coords, chunk=4)
    repeated = sample_at_points(masks.float(), coords.repeat(37, 1, 1))
    assert shared.dtype == torch.float32 and shared.shape == (37, 20)
    assert torch.equal(shared, repeated)
    for n in (0, 36):
        for p in (0, 7):
            x, y = coords[0, p].tolist()
            assert float(shared[n, p]) == pytest.approx(bilinear(masks[n].float(), x, y), abs=1e-6)
    per_mask = torch.rand(37, 20, 2)
    assert torch.equal(sample_at_points(masks, per_mask, chunk=5),
                       sample_at_points(masks.float(), per_mask))


def test_sample_at_points_empty_and_bad_shapes():
    assert sample_at_points(torch.zeros(0, 4, 4, dtype=torch.bool), torch.rand(1, 6, 2)).shape \
        == (0, 6)
    with pytest.raises(ValueError):
        sample_at_points(torch.zeros(3, 4, 4), torch.rand(2, 6, 2))
    with pytest.raises(ValueError):
        sample_at_points(torch.zeros(3, 4), torch.rand(1, 6, 2))


@pytest.mark.parametrize('num_points,over,ratio', [(64, 3.0, 0.75), (50, 2.5, 0.6), (40, 3.0, 1.0)])
def test_importance_sampling_matches_mmdet_draws(num_points, over, ratio):
    torch.manual_seed(0)
    logits = torch.randn(5, 1, 7, 9) * 3
    torch.manual_seed(11)
    ours = importance_sample_points(logits, num_points, over, ratio)
    after_ours = torch.rand(3)
    torch.manual_seed(11)
    ref = get_uncertain_point_coords_with_randomness(logits, None, num_points, over, ratio)
    after_ref = torch.rand(3)
    assert ours.shape == (5, num_points, 2)
    assert torch.equal(ours, ref)
    assert torch.equal(after_ours, after_ref)  # same number of draws: RNG stream stays aligned


def test_uncertain_points_are_the_most_uncertain_candidates():
    torch.manual_seed(1)
    logits = torch.randn(2, 1, 6, 6) * 4
    candidates, fresh = draw_importance_candidates(2, 10, 'cpu', 3.0, 0.5)
    assert candidates.shape == (2, 30, 2) and fresh.shape == (2, 5, 2)
    coords = select_uncertain_points(logits, candidates, fresh, 5)
    assert coords.shape == (2, 10, 2)
    assert torch.equal(coords[:, 5:], fresh)
    for n in range(2):
        unc = [-abs(bilinear(logits[n, 0], *candidates[n, i].tolist())) for i in range(30)]
        kept = [-abs(bilinear(logits[n, 0], *coords[n, i].tolist())) for i in range(5)]
        threshold = sorted(unc, reverse=True)[4]
        assert all(k >= threshold - 1e-5 for k in kept)
        assert min(kept) == pytest.approx(threshold, abs=1e-5)


def test_importance_sampling_has_no_grad_and_validates():
    logits = torch.randn(3, 1, 5, 5, requires_grad=True)
    coords = importance_sample_points(logits, 8)
    assert not coords.requires_grad
    with pytest.raises(ValueError):
        importance_sample_points(logits, 8, oversample_ratio=0.5)
    with pytest.raises(ValueError):
        importance_sample_points(logits, 8, importance_sample_ratio=1.5)
    with pytest.raises(ValueError):
        importance_sample_points(logits[:, 0], 8)
