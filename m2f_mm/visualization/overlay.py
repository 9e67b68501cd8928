"""Pictures of segmentation results: colour maps, class names, titled columns and a legend.

Pure numpy + PIL (no mmdet visualizer), so an empty result draws as the plain image. Instances of one
class get colours of their own (:func:`instance_colors`: the class colour, then deterministic jitters of
it, as mmdet's visualizer jitters its palette, but the same input always draws the same picture), so
touching, merged or split instances show.

Shape legend:
    H x W    one image
    N        instance masks
    pan      int [H, W]: label + instance_id * offset, VOID = C (the number of classes)
    sem      int [H, W]: class index, anything >= C (e.g. 255) = no class
    palette  float/uint8 [C, 3] RGB
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GAP = 4          # white pixels between columns / rows
WHITE = (255, 255, 255)
JITTER = 80             # an instance colour differs from its class colour by at most this per channel
JITTER_CANDIDATES = 64  # draws per instance colour; the one farthest from the class's colours so far wins


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` px (a fixed bitmap font where Pillow lacks FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no size argument
        return ImageFont.load_default()


def jitter(color: Sequence[float], label: int, rank: int) -> np.ndarray:
    """JITTER_CANDIDATES colours near ``color`` (each channel moved by up to +-JITTER, clipped to 0..255),
    the same for the same (label, rank). -> float [JITTER_CANDIDATES, 3]."""
    rng = np.random.default_rng([int(label), int(rank)])
    steps = rng.uniform(-JITTER, JITTER, (JITTER_CANDIDATES, 3))
    return np.clip(np.asarray(color, np.float64)[:3] + steps, 0, 255)


def instance_colors(palette: np.ndarray, labels: Sequence[int], instance_ids: Sequence[int]) -> np.ndarray:
    """One colour per segment, float [K, 3]: per class, segments in ascending instance id take the class
    colour, then jittered colours (mmdet's visualizer jitters its palette per instance, randomly), each
    the farthest of its :func:`jitter` candidates from the colours the class already used. Stuff
    (instance id 0) keeps the class colour. Depends only on the input, not on the listing order.

    Args:
        palette: [C, 3] RGB.
        labels: [K] class of each segment.
        instance_ids: [K] instance id of each segment (0 = stuff), unique within a class.
    """
    labels, instance_ids = np.asarray(labels, np.int64), np.asarray(instance_ids, np.int64)
    colors = np.zeros((len(labels), 3), np.float64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        members = members[np.argsort(instance_ids[members], kind='stable')]
        base = np.asarray(palette, np.float64)[label][:3]
        used = [base]
        for rank, k in enumerate(members):
            if rank == 0 or instance_ids[k] == 0:
                colors[k] = base
                continue
            candidates = jitter(base, label, rank)
            gaps = np.linalg.norm(candidates[:, None] - np.stack(used)[None], axis=-1).min(1)
            colors[k] = candidates[int(np.argmax(gaps))]
            used.append(colors[k])
    return colors


def panoptic_colors(pan: np.ndarray, palette: np.ndarray, num_classes: int, offset: int
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """pan [H, W] -> (colours float [H, W, 3], covered bool [H, W]): each segment in its
    :func:`instance_colors` colour, VOID (label >= num_classes) uncovered."""
    uniq, inverse = np.unique(pan, return_inverse=True)
    labels, ids = uniq % offset, uniq // offset
    valid = labels < num_classes
    seg_colors = np.zeros((len(uniq), 3), np.float64)
    if valid.any():
        seg_colors[valid] = instance_colors(palette, labels[valid], ids[valid])
    inverse = inverse.reshape(pan.shape)
    return seg_colors[inverse].astype(np.float32), valid[inverse]


def colorize_panoptic(pan: np.ndarray, palette: np.ndarray, num_classes: int, offset: int) -> np.ndarray:
    """pan [H, W] -> RGB [H, W, 3]: segments in their :func:`instance_colors` colour (instances of one class
    apart), white outlines between segments, VOID black."""
    rgb, covered = panoptic_colors(pan, palette, num_classes, offset)
    rgb[~covered] = 0
    edge = np.zeros(pan.shape, bool)
    edge[:-1] |= pan[:-1] != pan[1:]
    edge[:, :-1] |= pan[:, :-1] != pan[:, 1:]
    rgb[edge] = 255
    return rgb.clip(0, 255).astype(np.uint8)


def colorize_instances(image: np.ndarray, masks: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """image [H, W, 3], masks [N, H, W] bool (highest score last), labels [N] -> image with the masks
    blended in, each instance in its own colour (:func:`instance_colors`, instances of one class ranked in
    the given order); the image is darkened so that the masks stand out."""
    out = image.astype(np.float32) * 0.5
    colors = instance_colors(palette, labels, np.arange(1, len(labels) + 1)) if len(labels) else []
    for mask, color in zip(masks, colors):
        out[mask] = 0.35 * out[mask] + 0.65 * color.astype(np.float32)
    return out.clip(0, 255).astype(np.uint8)


def blend(image: np.ndarray, colors: np.ndarray, covered: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """image, colors [H, W, 3], covered [H, W] bool -> colours blended over the image where covered."""
    out = image.astype(np.float32)
    out[covered] = (1 - alpha) * out[covered] + alpha * colors[covered].astype(np.float32)
    return out.clip(0, 255).astype(np.uint8)


def segment_names(rgb: np.ndarray, segments: np.ndarray, labels: Sequence[int], classes: Sequence[str]) -> np.ndarray:
    """Write each segment's class name at its centre of mass. segments [K, H, W] bool, labels [K]."""
    if len(labels) == 0:
        return rgb
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    face = font(max(10, min(rgb.shape[:2]) // 18))
    for mask, label in zip(segments, labels):
        ys, xs = np.nonzero(mask)
        if len(ys) == 0:
            continue
        text = str(classes[label])
        # the segment's pixel nearest its centre of mass: inside the segment even when it is not convex
        k = int(np.argmin((ys - ys.mean())**2 + (xs - xs.mean())**2))
        left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
        x = int(xs[k]) - (right - left) // 2
        y = int(ys[k]) - (bottom - top) // 2
        draw.rectangle((x - 2, y - 1, x + right - left + 2, y + bottom - top + 3), fill=(0, 0, 0))
        draw.text((x - left, y - top + 1), text, fill=WHITE, font=face)
    return np.asarray(canvas)


def title_strip(titles: Sequence[str], widths: Sequence[int], size: int) -> np.ndarray:
    """A white strip with one centred title above each column (columns separated by GAP)."""
    face = font(size)
    height = size + 8
    strip = Image.new('RGB', (sum(widths) + GAP * (len(widths) - 1), height), WHITE)
    draw = ImageDraw.Draw(strip)
    x = 0
    for title, width in zip(titles, widths):
        left, _, right, _ = draw.textbbox((0, 0), title, font=face)
        draw.text((x + max(0, (width - (right - left)) // 2), 4), title, fill=(0, 0, 0), font=face)
        x += width + GAP
    return np.asarray(strip)


def legend(labels: Sequence[int], classes: Sequence[str], palette: np.ndarray, width: int, size: int,
           counts: Optional[Dict[int, int]] = None) -> np.ndarray:
    """Colour swatch + class name for each label (``name (n)`` where ``counts`` gives n > 1 segments),
    wrapped into rows of at most ``width`` px."""
    face = font(size)
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    entries: List[Tuple[int, str, int]] = []
    for label in labels:
        name = str(classes[label])
        if counts and counts.get(label, 0) > 1:
            name += f' ({counts[label]})'
        left, _, right, _ = probe.textbbox((0, 0), name, font=face)
        entries.append((label, name, size + 6 + right - left + 14))
    rows: List[List[Tuple[int, str, int]]] = [[]]
    used = 0
    for entry in entries:
        if rows[-1] and used + entry[2] > width:
            rows.append([])
            used = 0
        rows[-1].append(entry)
        used += entry[2]
    line = size + 8
    canvas = Image.new('RGB', (width, line * len(rows) + 4), WHITE)
    draw = ImageDraw.Draw(canvas)
    for row, entries_in_row in enumerate(rows):
        x, y = 4, 4 + row * line
        for label, name, step in entries_in_row:
            color = tuple(int(c) for c in np.asarray(palette)[label][:3])
            draw.rectangle((x, y, x + size, y + size), fill=color, outline=(0, 0, 0))
            draw.text((x + size + 6, y), name, fill=(0, 0, 0), font=face)
            x += step
    return np.asarray(canvas)


def titled_columns(columns: Sequence[np.ndarray], titles: Sequence[str], legend_labels: Optional[Sequence[int]] = None,
                   classes: Sequence[str] = (), palette: Optional[np.ndarray] = None,
                   counts: Optional[Dict[int, int]] = None) -> np.ndarray:
    """Columns of one height ([H, W_i, 3] each) side by side under their titles, with a legend of
    ``legend_labels`` (segment ``counts`` per label, optional) below when given (an empty list writes
    'no segment')."""
    height = columns[0].shape[0]
    width = sum(c.shape[1] for c in columns) + GAP * (len(columns) - 1)
    size = int(np.clip(width // 40, 11, 28))
    gap = np.full((height, GAP, 3), 255, np.uint8)
    body = np.concatenate([p for col in columns for p in (col, gap)][:-1], axis=1)
    parts = [title_strip(titles, [c.shape[1] for c in columns], size), body]
    if legend_labels is not None:
        if len(legend_labels):
            parts.append(legend(legend_labels, classes, palette, width, size, counts))
        else:
            parts.append(title_strip(['(nothing predicted)'], [width], size))
    return np.concatenate(parts, axis=0)


def stack_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Rows of possibly different widths, left-aligned on white, GAP px apart."""
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, GAP), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(padded, axis=0)[:-GAP]


def upscale(image: np.ndarray, min_width: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor until the width is >= ``min_width``."""
    scale = max(1, -(-min_width // image.shape[1]))
    return image.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else image
