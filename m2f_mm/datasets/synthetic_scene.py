"""Drawing one synthetic shape scene (the bundled benchmark, design version 2; see docs/demo.md).

A scene (default 192 x 192) is 2-4 textured stuff regions (``sky``, ``grass``, ``water``) under
thing instances (``circle``, ``square``, ``triangle``, ``star``):

- things: about 5-14 per 192 x 192 image (the count scales with the image area), radius
  log-uniform between 3% and 14% of the short side (6-27 px at 192 px: every thing covers at
  least ~6 cells of the stride-4 mask logits), half of them placed against an earlier one so
  they touch and occlude (every instance keeps >= half of its area visible);
- clutter: 3-8 distractors per 192 x 192 image (thin bars, rings, elongated blobs) painted in
  the things' hues but labelled as the stuff under them, so colour alone does not find things;
- hue noise that overlaps between some thing classes (so shape matters), a smooth illumination
  gradient over the whole image, thin VOID lines on some stuff boundaries and, rarely, one
  ``iscrowd=1`` cluster of small same-class shapes.

Shape legend: H x W image height x width.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

THING_CLASSES = ('circle', 'square', 'triangle', 'star')
STUFF_CLASSES = ('sky', 'grass', 'water')
CLASSES = THING_CLASSES + STUFF_CLASSES
THING_IDS = (1, 2, 3, 5)
STUFF_IDS = (10, 12, 13)
CATEGORY_IDS = THING_IDS + STUFF_IDS
CLASS_INDEX = {cat_id: i for i, cat_id in enumerate(CATEGORY_IDS)}
PALETTE = ((220, 20, 60), (250, 190, 0), (190, 0, 190), (255, 110, 0), (135, 206, 235),
           (34, 139, 34), (0, 80, 140))
ID_STRIDE = 100_000  # segment id = category_id * ID_STRIDE + k: uses all of R, G and B
SPLIT_STREAMS = {'train': 0, 'val': 1}
DESIGN_SIZE = 192  # object counts are per DESIGN_SIZE^2 pixels and scale with the image area
MIN_AREA = 12  # smallest visible thing area (pixels)
THING_RADIUS = (0.03, 0.14)  # thing radius range, fraction of the short side (log-uniform)
MIN_RADIUS_PX = 3.0
THINGS_PER_IMAGE = (5, 14)  # placement attempts per DESIGN_SIZE^2; a few fail the visibility rule
CLUTTER_PER_IMAGE = (3, 8)
TOUCH_PROB = 0.5  # a thing is placed against an earlier one
THING_HUES = (0.0, 0.14, 0.85, 0.06)  # circle red, square yellow, triangle magenta, star orange
HUE_NOISE = 0.06
CROWD_PROB = 0.08
VOID_PROB = 0.7
LIGHT_AMPLITUDE = 0.12  # illumination gain 1 +- this, a smooth field over the image


@dataclass
class Scene:
    """One generated scene.

    image: uint8[H, W, 3] RGB. pan_ids: int64[H, W] panoptic segment id, 0 = VOID.
    segments: ``{'id', 'category_id', 'iscrowd'}`` for every non-zero id of ``pan_ids``.
    """
    image: np.ndarray
    pan_ids: np.ndarray
    segments: list


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The independent random stream of image ``index`` of ``split``."""
    return np.random.default_rng([seed, SPLIT_STREAMS[split], index])


def _smooth_field(rng: np.random.Generator, h: int, w: int, amp: float) -> np.ndarray:
    """float32[H, W] sum of three random low-frequency plane waves of total amplitude ~``amp``."""
    ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    out = np.zeros((h, w), np.float32)
    for _ in range(3):
        fy, fx = rng.uniform(0.5, 2.0, size=2) * 2 * math.pi / np.array([h, w])
        a = (fy * rng.choice([-1, 1]) * ys).astype(np.float32)
        b = (fx * xs + rng.uniform(0, 2 * math.pi)).astype(np.float32)
        # sin(a + b) as two outer products: O(H + W) transcendentals instead of O(H W)
        out += np.outer(np.sin(a), np.cos(b)) + np.outer(np.cos(a), np.sin(b))
    return out * (amp / 3)


def stuff_layout(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the image into 2-4 wavy Voronoi regions.

    Returns region: int64[H, W] region index, region_class: int64[K] stuff index per region.
    """
    k = int(rng.integers(2, 5))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centres = rng.uniform((0, 0), (h, w), size=(k, 2)).astype(np.float32)
    dist = np.stack([np.hypot(yy - cy, xx - cx) + _smooth_field(rng, h, w, 0.12 * min(h, w))
                     for cy, cx in centres])
    return dist.argmin(0), rng.integers(0, len(STUFF_CLASSES), size=k)


def stuff_texture(rng: np.random.Generator, stuff: int, h: int, w: int) -> np.ndarray:
    """float32[H, W, 3] texture of stuff class ``stuff`` (0 sky, 1 grass, 2 water)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi)
    if stuff == 0:  # sky: pale blue, smooth vertical gradient, faint noise
        base = rng.uniform((140, 185, 228), (180, 215, 250))
        tex = base - 30 * (yy / h - 0.5)[..., None]
        sigma = 3.0
    elif stuff == 1:  # grass: green, slanted thin stripes, strong noise
        base = rng.uniform((40, 115, 25), (80, 160, 60))
        stripes = 20 * np.sin(2 * math.pi * (xx + rng.uniform(-0.4, 0.4) * yy)
                              / rng.uniform(3, 6) + phase)
        tex = base + stripes[..., None] * np.array([0.5, 1.0, 0.4])
        sigma = 12.0
    else:  # water: dark blue-teal, horizontal wavy bands
        base = rng.uniform((15, 65, 115), (40, 100, 150))
        warp = 2 * np.sin(2 * math.pi * xx / rng.uniform(12, 24))
        waves = 22 * np.sin(2 * math.pi * (yy + warp) / rng.uniform(5, 9) + phase)
        tex = base + waves[..., None] * np.array([0.4, 0.8, 1.0])
        sigma = 5.0
    return (tex + rng.normal(0, sigma, size=(h, w, 3))).astype(np.float32)


def _polygon(cx: float, cy: float, radii: list, n: int, angle: float) -> list:
    """``n`` vertices around (cx, cy) alternating through ``radii``, starting at ``angle``."""
    return [(cx + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / n),
             cy + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / n)) for i in range(n)]


def rasterize_shape(kind: int, cx: float, cy: float, r: float, angle: float,
                    h: int, w: int) -> np.ndarray:
    """bool[H, W] mask of thing ``kind`` (index into THING_CLASSES) of size ``r`` at (cx, cy).

    Areas are ~3 r^2 for every kind; the part outside the image is cut off.
    """
    canvas = Image.new('L', (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    elif kind == 1:
        draw.polygon(_polygon(cx, cy, [0.9 * math.sqrt(2) * r], 4, angle), fill=1)
    elif kind == 2:
        draw.polygon(_polygon(cx, cy, [1.5 * r], 3, angle), fill=1)
    else:
        draw.polygon(_polygon(cx, cy, [1.6 * r, 0.65 * r], 10, angle), fill=1)
    return np.asarray(canvas, dtype=bool)


def rasterize_clutter(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """bool[H, W] mask of one distractor: a thin bar, a ring or an elongated blob, 4-16 px."""
    canvas = Image.new('L', (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    size, angle = rng.uniform(4, 16), rng.uniform(0, math.pi)
    kind = int(rng.integers(3))
    if kind == 0:  # bar: length 2 * size, width 2-4 px
        dx, dy = size * math.cos(angle), size * math.sin(angle)
        draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=1, width=int(rng.integers(2, 5)))
    elif kind == 1:  # ring: outline 2-3 px thick
        r = size * 0.7
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, width=int(rng.integers(2, 4)))
    else:  # blob: ellipse of aspect 2.5-4, rotated (a polygon approximates it)
        a, b = size, size / rng.uniform(2.5, 4.0)
        pts = [(cx + a * math.cos(t) * math.cos(angle) - b * math.sin(t) * math.sin(angle),
                cy + a * math.cos(t) * math.sin(angle) + b * math.sin(t) * math.cos(angle))
               for t in np.linspace(0, 2 * math.pi, 16, endpoint=False)]
        draw.polygon(pts, fill=1)
    return np.asarray(canvas, dtype=bool)


def _thing_colour(rng: np.random.Generator, kind: int) -> np.ndarray:
    """float[3] RGB colour: the class hue plus noise, random saturation and value."""
    hue = (THING_HUES[kind] + rng.uniform(-HUE_NOISE, HUE_NOISE)) % 1.0
    return 255 * np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 1), rng.uniform(0.6, 1)))


def _paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, kind: int,
           cx: float, cy: float, r: float) -> None:
    """Paint ``mask`` of ``image`` (float32[H, W, 3]) with a shaded colour of class ``kind``."""
    ys, xs = np.nonzero(mask)
    theta = rng.uniform(0, 2 * math.pi)
    ramp = ((xs - cx) * math.cos(theta) + (ys - cy) * math.sin(theta)) / max(r, 1.0)
    image[ys, xs] = _thing_colour(rng, kind)[None] * (1 + 0.18 * np.clip(ramp, -1, 1))[:, None]


def _fits(mask: np.ndarray, owner: np.ndarray, areas: list) -> bool:
    """Whether ``mask`` is big enough and leaves >= half of every earlier instance visible."""
    if mask.sum() < MIN_AREA:
        return False
    if not areas:
        return True
    taken = owner >= 0
    visible = np.bincount(owner[taken], minlength=len(areas))
    covered = np.bincount(owner[mask & taken], minlength=len(areas))
    return bool(np.all(visible - covered >= np.maximum(MIN_AREA, 0.5 * np.array(areas))))


def _count(rng: np.random.Generator, bounds: tuple, h: int, w: int) -> int:
    """An integer drawn from ``bounds`` (per DESIGN_SIZE^2 pixels) scaled to an H x W image."""
    scale = h * w / DESIGN_SIZE ** 2
    return int(round(rng.uniform(bounds[0], bounds[1] + 1) * scale))


def _add_crowd(rng: np.random.Generator, image: np.ndarray, owner: np.ndarray, placed: list,
               areas: list, circles: list) -> None:
    """One crowd: a cluster of 4-7 small shapes of one class, a single ``iscrowd=1`` segment."""
    h, w = owner.shape
    kind, cx, cy = int(rng.integers(len(THING_CLASSES))), rng.uniform(12, w - 12), rng.uniform(12, h - 12)
    parts = [(rng.uniform(cx - 10, cx + 10), rng.uniform(cy - 10, cy + 10), rng.uniform(3, 5.5))
             for _ in range(int(rng.integers(4, 8)))]
    union = np.zeros((h, w), bool)
    for px, py, pr in parts:
        part = rasterize_shape(kind, px, py, pr, rng.uniform(0, 2 * math.pi), h, w)
        _paint(rng, image, part, kind, px, py, pr)
        union |= part
    owner[union] = len(placed)
    placed.append((kind, 1))
    areas.append(int(union.sum()))
    circles.append((cx, cy, 12.0))


def generate_scene(rng: np.random.Generator, h: int, w: int) -> Scene:
    """Draw one scene of size H x W from ``rng``."""
    region, region_class = stuff_layout(rng, h, w)
    image = np.zeros((h, w, 3), np.float32)
    for s in np.unique(region_class):
        sel = np.isin(region, np.flatnonzero(region_class == s))
        image[sel] = stuff_texture(rng, int(s), h, w)[sel]
    for _ in range(_count(rng, CLUTTER_PER_IMAGE, h, w)):  # under the things, labelled as stuff
        mask = rasterize_clutter(rng, h, w)
        if mask.any():
            _paint(rng, image, mask, int(rng.integers(len(THING_CLASSES))), w / 2, h / 2, max(h, w))
    owner = np.full((h, w), -1, np.int64)  # index into `placed`, -1 = stuff
    placed: list[tuple[int, int]] = []  # (thing kind, iscrowd)
    areas: list[int] = []
    circles: list[tuple[float, float, float]] = []
    if rng.random() < CROWD_PROB:
        _add_crowd(rng, image, owner, placed, areas, circles)
    short = min(h, w)
    r_lo, r_hi = max(MIN_RADIUS_PX, THING_RADIUS[0] * short), max(MIN_RADIUS_PX, THING_RADIUS[1] * short)
    for _ in range(max(1, _count(rng, THINGS_PER_IMAGE, h, w))):
        kind = int(rng.integers(len(THING_CLASSES)))
        r = math.exp(rng.uniform(math.log(r_lo), math.log(r_hi)))
        for _attempt in range(5):
            if circles and rng.random() < TOUCH_PROB:  # touch / overlap an earlier instance
                ox, oy, orad = circles[int(rng.integers(len(circles)))]
                phi, dist = rng.uniform(0, 2 * math.pi), (orad + r) * rng.uniform(0.8, 1.05)
                cx, cy = ox + dist * math.cos(phi), oy + dist * math.sin(phi)
            else:
                cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            mask = rasterize_shape(kind, cx, cy, r, rng.uniform(0, 2 * math.pi), h, w)
            if _fits(mask, owner, areas):
                _paint(rng, image, mask, kind, cx, cy, r)
                owner[mask] = len(placed)
                placed.append((kind, 0))
                areas.append(int(mask.sum()))
                circles.append((cx, cy, r))
                break
    void = np.zeros((h, w), bool)
    if rng.random() < VOID_PROB:  # 1-px unlabeled lines where stuff regions meet
        void[:, 1:] |= region[:, 1:] != region[:, :-1]
        void[1:, :] |= region[1:, :] != region[:-1, :]
    pan = np.zeros((h, w), np.int64)
    segments = []
    counts = [0] * len(THING_CLASSES)
    for j, (kind, crowd) in enumerate(placed):
        counts[kind] += 1
        seg_id = THING_IDS[kind] * ID_STRIDE + counts[kind]
        pan[owner == j] = seg_id
        segments.append(dict(id=seg_id, category_id=THING_IDS[kind], iscrowd=crowd))
    for s, cat_id in enumerate(STUFF_IDS):
        sel = np.isin(region, np.flatnonzero(region_class == s)) & ~void & (owner < 0)
        if sel.any():
            pan[sel] = cat_id * ID_STRIDE
            segments.append(dict(id=cat_id * ID_STRIDE, category_id=cat_id, iscrowd=0))
    image *= (1 + _smooth_field(rng, h, w, LIGHT_AMPLITUDE))[..., None]  # illumination
    image += rng.normal(0, 3, size=image.shape)
    return Scene(np.clip(np.rint(image), 0, 255).astype(np.uint8), pan, segments)
