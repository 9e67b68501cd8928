"""One figure per task: image | result, titled columns, class names on the segments and a legend.

Instances of one class are drawn in colours of their own (``overlay.instance_colors``), each segment
carries its class name, and the legend gives each class with its number of segments (``coin (24)``).

Shape legend: H x W image; N instances; C classes. ``pan`` int [H, W] = label + instance_id * offset
with VOID = C; ``sem`` int [H, W] class index, values >= C mean no class; ``palette`` [C, 3] RGB.
An empty result (no segment, no instance above the score threshold) gives the same two columns, the
result column showing the plain image, and the legend saying so. Images narrower than MIN_WIDTH
are enlarged (nearest neighbour, integer factor) so that names and titles stay readable.
"""
from typing import Sequence

import numpy as np

from .overlay import blend, colorize_instances, panoptic_colors, segment_names, titled_columns

MIN_WIDTH = 320


def _enlarge(image: np.ndarray, *maps: np.ndarray):
    """image [H, W, 3] and maps [..., H, W] enlarged by the same integer factor to >= MIN_WIDTH px wide."""
    scale = max(1, -(-MIN_WIDTH // image.shape[1]))
    if scale == 1:
        return (image, ) + maps
    grow = [image.repeat(scale, 0).repeat(scale, 1)]
    grow += [np.asarray(m).repeat(scale, -2).repeat(scale, -1) for m in maps]
    return tuple(grow)


def _present(labels: np.ndarray, num_classes: int) -> list:
    return [int(v) for v in np.unique(labels) if 0 <= v < num_classes]


def _counts(labels) -> dict:
    """{label: number of segments} for the legend."""
    values, counts = np.unique(np.asarray(labels, np.int64), return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def panoptic_figure(image: np.ndarray, pan: np.ndarray, classes: Sequence[str], palette: np.ndarray,
                    offset: int) -> np.ndarray:
    """image [H, W, 3] RGB uint8, pan [H, W] -> figure 'image | panoptic' with names and legend."""
    num_classes = len(classes)
    image, pan = _enlarge(image, np.asarray(pan, np.int64))
    ids = [int(i) for i in np.unique(pan) if i % offset < num_classes]
    labels = [i % offset for i in ids]
    segments = np.stack([pan == i for i in ids]) if ids else np.zeros((0, ) + pan.shape, bool)
    colors, covered = panoptic_colors(pan, palette, num_classes, offset)
    result = blend(image, colors, covered)
    edge = np.zeros(pan.shape, bool)
    edge[:-1] |= pan[:-1] != pan[1:]
    edge[:, :-1] |= pan[:, :-1] != pan[:, 1:]
    result[edge & covered] = 255
    result = segment_names(result, segments, labels, classes)
    things = sum(1 for i in ids if i >= offset)
    title = f'panoptic: {len(ids)} segments ({things} things)' if ids else 'panoptic: no segment'
    return titled_columns([image, result], ['image', title], _present(np.array(labels), num_classes), classes,
                          palette, _counts(labels))


def instance_figure(image: np.ndarray, masks: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                    classes: Sequence[str], palette: np.ndarray, score_thr: float) -> np.ndarray:
    """image [H, W, 3], masks [N, H, W] bool, labels [N], scores [N] -> 'image | instances > thr'."""
    image, masks = _enlarge(image, np.asarray(masks, bool).reshape((-1, ) + image.shape[:2]))
    keep = np.asarray(scores) > score_thr
    order = np.argsort(np.asarray(scores)[keep])  # highest score painted last, on top
    masks, labels = np.asarray(masks)[keep][order], np.asarray(labels)[keep][order]
    result = colorize_instances(image, masks, labels, palette) if len(labels) else image.copy()
    result = segment_names(result, masks, labels, classes)
    title = f'instances: {len(labels)} with score > {score_thr:g}'
    return titled_columns([image, result], ['image', title], _present(labels, len(classes)), classes, palette,
                          _counts(labels))


def semantic_figure(image: np.ndarray, sem: np.ndarray, classes: Sequence[str], palette: np.ndarray) -> np.ndarray:
    """image [H, W, 3], sem [H, W] -> 'image | semantic' with names and legend."""
    num_classes = len(classes)
    image, sem = _enlarge(image, np.asarray(sem, np.int64))
    labels = _present(sem, num_classes)
    covered = (sem >= 0) & (sem < num_classes)
    colors = np.zeros(sem.shape + (3, ), np.float32)
    colors[covered] = np.asarray(palette, np.float32)[sem[covered]]
    result = segment_names(blend(image, colors, covered), np.stack([sem == v for v in labels])
                           if labels else np.zeros((0, ) + sem.shape, bool), labels, classes)
    title = f'semantic: {len(labels)} classes' if labels else 'semantic: no class'
    return titled_columns([image, result], ['image', title], labels, classes, palette)
