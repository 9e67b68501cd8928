"""Figures of predictions (pure numpy + PIL) and the mmdet visualizer that draws empty panoptic maps."""
import numpy as np
import torch
from mmengine.structures import PixelData

from m2f_mm.visualization import M2FDetLocalVisualizer, instance_figure, panoptic_figure, semantic_figure
from m2f_mm.visualization.overlay import GAP, colorize_instances, colorize_panoptic, legend, titled_columns, upscale

OFFSET = 1000
CLASSES = ('cat', 'dog', 'sky')
PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)


def _image(h=40, w=64):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_titled_columns_layout():
    a, b = np.zeros((10, 20, 3), np.uint8), np.zeros((10, 30, 3), np.uint8)
    out = titled_columns([a, b], ['left', 'right'])
    assert out.shape[1] == 20 + GAP + 30
    assert out.shape[0] > 10  # a title strip above
    assert (out[-10:, 20:20 + GAP] == 255).all()  # white gap between the columns


def test_legend_wraps_rows_to_the_width():
    one_row = legend([0], CLASSES, PALETTE, width=400, size=12)
    many = legend([0, 1, 2] * 4, CLASSES, PALETTE, width=120, size=12)
    assert many.shape[1] == 120 and many.shape[0] > 2 * one_row.shape[0] - 8
    # the swatch of class 0 is painted in its palette colour
    assert (one_row == PALETTE[0]).all(-1).sum() >= 12 * 12 - 4 * 12


def test_colorize_panoptic_void_black_outlines_white():
    pan = np.full((6, 6), 3, np.int64)          # VOID = 3 classes
    pan[:3, :3] = 0 + 1 * OFFSET                # a 'cat' instance
    rgb = colorize_panoptic(pan, PALETTE, 3, OFFSET)
    assert (rgb[5, 5] == 0).all()
    assert (rgb[2, :3] == 255).all()            # the edge row of the instance
    assert tuple(rgb[0, 0]) != (0, 0, 0)


def test_empty_panoptic_figure_shows_the_image_unchanged():
    image = _image()
    figure = panoptic_figure(image, np.full(image.shape[:2], 3), CLASSES, PALETTE, OFFSET)
    big = upscale(image, 320)
    top = (figure.shape[0] - big.shape[0]) // 2  # somewhere inside the image rows
    left = figure[:, :big.shape[1]]
    right = figure[:, big.shape[1] + GAP:]
    rows = slice(top, top + 10)  # titles differ; the image rows must not
    assert np.array_equal(left[rows], right[rows])


def test_panoptic_figure_paints_segments_in_their_colour():
    image = np.zeros((32, 32, 3), np.uint8)
    pan = np.full((32, 32), 2, np.int64)        # 'sky' (stuff, label 2) everywhere
    pan[:16] = 1 * OFFSET + 1                   # a 'dog' instance on top
    figure = panoptic_figure(image, pan, CLASSES, PALETTE, OFFSET)
    width = upscale(image, 320).shape[1]
    result = figure[:, width + GAP:]
    green = (result[..., 1] > 100) & (result[..., 0] < 50) & (result[..., 2] < 50)
    blue = (result[..., 2] > 100) & (result[..., 0] < 50) & (result[..., 1] < 50)
    assert green.sum() > 1000 and blue.sum() > 1000


def test_instance_figure_keeps_scores_above_threshold_only():
    image = _image(32, 32)
    masks = np.zeros((2, 32, 32), bool)
    masks[0, :10], masks[1, 20:] = True, True
    low = instance_figure(image, masks, np.array([0, 1]), np.array([0.2, 0.3]), CLASSES, PALETTE, 0.5)
    high = instance_figure(image, masks, np.array([0, 1]), np.array([0.9, 0.3]), CLASSES, PALETTE, 0.5)
    width = upscale(image, 320).shape[1]
    assert low.shape[1] == high.shape[1] == 2 * width + GAP
    assert not np.array_equal(low, high)


def test_semantic_figure_ignores_255():
    image = _image(32, 32)
    sem = np.full((32, 32), 255)
    sem[:, :8] = 2
    figure = semantic_figure(image, sem, CLASSES, PALETTE)
    assert figure.shape[1] == 2 * upscale(image, 320).shape[1] + GAP


def test_m2f_visualizer_draws_an_all_void_panoptic_map():
    visualizer = M2FDetLocalVisualizer(name='m2f_test_vis')
    visualizer.dataset_meta = dict(classes=CLASSES, palette=[tuple(p) for p in PALETTE.tolist()])
    image = _image(24, 24)
    empty = PixelData(sem_seg=torch.full((1, 24, 24), 3))
    drawn = visualizer._draw_panoptic_seg(image, empty.numpy(), list(CLASSES), visualizer.dataset_meta['palette'])
    assert np.array_equal(drawn, image)
    full = PixelData(sem_seg=torch.full((1, 24, 24), 2))
    painted = visualizer._draw_panoptic_seg(image, full.numpy(), list(CLASSES), visualizer.dataset_meta['palette'])
    assert not np.array_equal(painted, image)  # the non-empty path is mmdet's drawing


# -- instances of one class told apart ---------------------------------------------------------------------------

def _two_touching_cats():
    """Two 'cat' instances side by side (columns 0-15 and 16-31), 'sky' stuff below."""
    pan = np.full((32, 32), 2, np.int64)
    pan[:16, :16] = 0 + 1 * OFFSET
    pan[:16, 16:] = 0 + 2 * OFFSET
    return pan


def test_instance_colors_first_is_the_class_colour_others_apart_and_order_free():
    from m2f_mm.visualization.overlay import instance_colors
    labels, ids = [0] * 24 + [2], list(range(1, 25)) + [0]
    colors = instance_colors(PALETTE, labels, ids)
    assert np.array_equal(colors[0], PALETTE[0]) and np.array_equal(colors[24], PALETTE[2])  # first / stuff
    gaps = np.linalg.norm(colors[:24, None] - colors[None, :24], axis=-1) + 1e9 * np.eye(24)
    assert gaps.min() > 20  # 24 instances of one class, pairwise apart (RGB distance)
    shuffled = np.random.default_rng(0).permutation(25)
    again = instance_colors(PALETTE, np.array(labels)[shuffled], np.array(ids)[shuffled])
    assert np.array_equal(again, colors[shuffled])  # a segment's colour does not depend on the listing order
    # saturated corners still give distinct colours
    white = np.array([[255, 255, 255]], np.uint8)
    assert len({tuple(c) for c in instance_colors(white, [0] * 5, range(1, 6)).round(3)}) == 5


def test_touching_instances_of_one_class_get_different_colours_in_every_overlay():
    pan = _two_touching_cats()
    colored = colorize_panoptic(pan, PALETTE, 3, OFFSET)
    assert tuple(colored[4, 4]) != tuple(colored[4, 20])  # inside the left / right cat
    image = np.zeros((32, 32, 3), np.uint8)
    figure = panoptic_figure(image, pan, CLASSES, PALETTE, OFFSET)
    width = upscale(image, 320).shape[1]
    scale = width // 32
    body = np.flatnonzero((figure[:, :width] == 0).all((1, 2)))  # the rows of the (black) image column
    result = figure[body[0]:body[-1] + 1, width + GAP:]
    assert result.shape[:2] == (32 * scale, 32 * scale)
    left, right = result[4 * scale, 2 * scale], result[4 * scale, 30 * scale]  # inside the left / right cat
    assert tuple(left) != tuple(right) and left[0] > left[1] and right[0] > right[1]  # both reddish
    masks = np.stack([pan == 1 * OFFSET, pan == 2 * OFFSET])
    drawn = colorize_instances(image, masks, np.array([0, 0]), PALETTE)
    assert tuple(drawn[4, 4]) != tuple(drawn[4, 20])


def test_the_same_input_draws_the_same_figure_twice():
    image = _image(32, 32)
    pan = _two_touching_cats()
    assert np.array_equal(panoptic_figure(image, pan, CLASSES, PALETTE, OFFSET),
                          panoptic_figure(image.copy(), pan.copy(), CLASSES, PALETTE, OFFSET))
    masks = np.stack([pan == 1 * OFFSET, pan == 2 * OFFSET])
    args = (masks, np.array([0, 0]), np.array([0.9, 0.8]), CLASSES, PALETTE, 0.5)
    assert np.array_equal(instance_figure(image, *args), instance_figure(image, *args))


def test_legend_gives_the_segment_count_per_class():
    plain = legend([0], CLASSES, PALETTE, width=400, size=12)
    counted = legend([0], CLASSES, PALETTE, width=400, size=12, counts={0: 24})
    ink = lambda img: np.flatnonzero((img != 255).any((0, 2)))[-1]  # noqa: E731  (rightmost drawn column)
    assert ink(counted) > ink(plain) + 10  # 'cat (24)' is longer than 'cat'
    assert np.array_equal(legend([0], CLASSES, PALETTE, 400, 12, counts={0: 1}), plain)  # one segment: no count


def test_24_touching_coins_draw_in_24_colours():
    """The case of a photo of 24 coins: every instance of the one class in a colour of its own."""
    pan = np.zeros((32, 48), np.int64)
    for k in range(24):  # a 4 x 6 grid of 8 x 8 touching instances of class 0
        pan[(k // 6) * 8:(k // 6) * 8 + 8, (k % 6) * 8:(k % 6) * 8 + 8] = 0 + (k + 1) * OFFSET
    centres = [((k // 6) * 8 + 4, (k % 6) * 8 + 4) for k in range(24)]
    colored = colorize_panoptic(pan, PALETTE, 3, OFFSET)
    assert len({tuple(colored[y, x]) for y, x in centres}) == 24
    image = np.zeros((32, 48, 3), np.uint8)
    figure = panoptic_figure(image, pan, CLASSES, PALETTE, OFFSET)
    width = upscale(image, 320).shape[1]
    scale = width // 48
    body = np.flatnonzero((figure[:, :width] == 0).all((1, 2)))
    result = figure[body[0]:body[-1] + 1, width + GAP:]
    # sample off-centre, away from the class names written at the centres
    assert len({tuple(result[(y - 3) * scale, (x - 3) * scale]) for y, x in centres}) == 24
