"""Distinct class colours for datasets that give none."""
import colorsys
from typing import List, Tuple


def distinct_palette(num: int) -> List[Tuple[int, int, int]]:
    """``num`` well-separated, deterministic RGB colours (golden-ratio hue steps, two saturations)."""
    colours = []
    for i in range(num):
        r, g, b = colorsys.hsv_to_rgb((0.11 + i * 0.618034) % 1.0, 0.75 - 0.25 * ((i // 7) % 2), 0.95)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours
