"""The COCO panoptic format: segment ids, their PNG encoding, and panoptic predictions as segments.

Shape legend: H x W one image (= its panoptic PNG); C classes (VOID in predicted maps = C).

A COCO panoptic PNG stores segment id ``R + 256 G + 256^2 B`` per pixel; id 0 (black) is VOID.
m2f_mm's panoptic predictions (mmdet's format) are maps of ``label + instance * INSTANCE_OFFSET`` with
VOID = C. Datasets read ground truth, evaluation scores and apis writes results through this module,
which imports numpy and PIL only (``m2f_mm.evaluation.pq`` imports without the OpenMMLab stack);
:func:`read_panoptic_ids` reaches mmcv / mmengine when called, for their file backends and decoders.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

VOID = 0  # segment id of unlabeled pixels (RGB 0, 0, 0)
# mmdet.evaluation.functional.INSTANCE_OFFSET, the value the fusion heads encode with; restated so this
# module imports with numpy alone (tests/structures/test_panoptic_format.py pins it to mmdet's).
INSTANCE_OFFSET = 1000


def rgb2id(color: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] RGB -> int64 [...] segment ids (int32 input is fine too)."""
    color = np.asarray(color).astype(np.int64)
    return color[..., 0] + 256 * color[..., 1] + 65536 * color[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """int [...] segment ids -> uint8 [..., 3] RGB."""
    ids = np.asarray(ids).astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def load_panoptic_png(path: str) -> np.ndarray:
    """A local COCO panoptic PNG -> ids [H,W] int64 (PIL; what the numpy-only PQ code reads); a clear error
    for a missing or corrupt file."""
    try:
        with Image.open(path) as img:
            return rgb2id(np.asarray(img.convert('RGB')))
    except (OSError, ValueError) as err:
        raise ValueError(f'cannot read panoptic PNG {path!r}: {err}') from err


def read_panoptic_ids(path: str, image_id=None, backend_args: Optional[dict] = None,
                      imdecode_backend: str = 'cv2') -> np.ndarray:
    """COCO panoptic PNG through mmengine's file backends -> segment ids int32 [H,W] (the dtype
    panopticapi's rgb2id gives); the error names the PNG and ``image_id``."""
    # Imported here, not above: the rest of the module serves the numpy-only PQ code.
    import mmcv
    from mmengine.fileio import get
    try:
        rgb = mmcv.imfrombytes(get(path, backend_args=backend_args), flag='color', channel_order='rgb',
                               backend=imdecode_backend)
    except Exception as err:  # missing file, cv2/pillow decode errors
        raise ValueError(f'cannot read panoptic PNG {path!r} of image id {image_id}: {err}') from err
    if rgb is None or rgb.ndim != 3:
        raise ValueError(f'cannot decode panoptic PNG {path!r} of image id {image_id}: corrupt or not an image')
    return rgb2id(rgb).astype(np.int32)


def panoptic_semantic_map(pan: np.ndarray, segment_ids: Sequence[int], categories: Sequence[int],
                          ignore_index: int = 255) -> np.ndarray:
    """pan [H,W] ids, per-segment contiguous categories -> class map [H,W] (pan's dtype), ignore_index elsewhere.
    A duplicated id takes its last category, as mmdet's sequential ``np.where``."""
    uniq, inv = np.unique(pan, return_inverse=True)
    lut = np.full(len(uniq), ignore_index, dtype=np.int64)
    ids = np.asarray(segment_ids, dtype=np.int64)
    if len(ids):
        pos = np.minimum(np.searchsorted(uniq, ids), len(uniq) - 1)
        hit = uniq[pos] == ids
        lut[pos[hit]] = np.asarray(categories, dtype=np.int64)[hit]
    return lut[inv.reshape(pan.shape)].astype(pan.dtype)


def prediction_segments(pan: np.ndarray, num_classes: int, label2cat: Optional[Dict[int, int]] = None,
                        ignore_index: Optional[int] = None) -> Tuple[np.ndarray, List[dict]]:
    """pan [H,W] label + inst * OFFSET -> (ids [H,W] int64 with VOID = 0, COCO segments_info with areas)."""
    ids = pan.astype(np.int64)
    labels = ids % INSTANCE_OFFSET
    void = (labels == num_classes) | (labels == (num_classes if ignore_index is None else ignore_index))
    if ((ids == 0) & ~void).any():  # class 0 with instance 0 would collide with VOID = 0
        ids[(ids == 0) & ~void] = int(ids.max()) + INSTANCE_OFFSET
    ids[void] = 0
    uniq, counts = np.unique(ids, return_counts=True)
    segments = [dict(id=int(i), category_id=int(label2cat[i % INSTANCE_OFFSET] if label2cat else i % INSTANCE_OFFSET),
                     area=int(n)) for i, n in zip(uniq, counts) if i != 0]
    return ids, segments
