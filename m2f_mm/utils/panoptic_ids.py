"""COCO panoptic segment ids and their RGB encoding (numpy only).

A COCO panoptic PNG stores segment id ``R + 256 G + 256^2 B`` per pixel; id 0 (black) is VOID.
"""
import numpy as np

VOID = 0  # segment id of unlabeled pixels (RGB 0, 0, 0)


def rgb2id(color: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] RGB -> int64 [...] segment ids (int32 input is fine too)."""
    color = np.asarray(color).astype(np.int64)
    return color[..., 0] + 256 * color[..., 1] + 65536 * color[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """int [...] segment ids -> uint8 [..., 3] RGB."""
    ids = np.asarray(ids).astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)
