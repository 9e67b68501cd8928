"""Figures of predictions (pure numpy + PIL) and the mmdet visualizer that draws empty panoptic maps."""
import numpy as np
import torch
from mmengine.structures import PixelData

from m2f_mm.visualization import M2FDetLocalVisualizer, instance_figure, panoptic_figure, semantic_figure
from m2f_mm.visualization.overlay import GAP, colorize_panoptic, legend, titled_columns, upscale

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
