"""COCO panoptic loading without ``panopticapi``.

Shape legend: H x W the image (= the panoptic PNG), N thing segments (crowd excluded).

``M2FLoadPanopticAnnotations`` produces exactly what mmdet 3.3's ``LoadPanopticAnnotations`` does
(``gt_bboxes`` HorizontalBoxes, ``gt_bboxes_labels`` int64, ``gt_ignore_flags`` bool,
``gt_masks`` BitmapMasks [N,H,W] of the non-crowd things, ``gt_seg_map`` int32 [H,W] with the
contiguous class of every listed segment -- crowd regions keep their thing class -- and 255 for
VOID and unlisted ids), but decodes id = R + 256 G + 256^2 B itself, builds the semantic map with
one ``np.unique`` + lookup table instead of one full-image pass per segment, and checks the
annotation: a PNG that cannot be decoded, a PNG whose size differs from the JSON image entry, ids in
the PNG that the JSON does not list (or the reverse) raise ``ValueError`` naming the PNG and the
image id. ``M2FCocoPanopticDataset`` (mmdet's ``CocoPanopticDataset`` loads through pycocotools
and never needed panopticapi) adds two things: an unknown ``category_id`` raises naming the image
file and the segment id (mmdet: a bare ``KeyError``), and the ids of segments mmdet drops (zero
area, box under 1 px) are kept as ``ignored_segment_ids`` so the id check does not flag them.
"""
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmdet.datasets import CocoPanopticDataset
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.structures.mask import BitmapMasks
from mmengine.fileio import get
from mmengine.logging import print_log

from ..engine.errors import M2FBadSampleError
from ..registry import register_dataset, register_transform
from ..utils.panoptic_ids import VOID, rgb2id



def read_panoptic_ids(path: str, image_id=None, backend_args: Optional[dict] = None,
                      imdecode_backend: str = 'cv2') -> np.ndarray:
    """COCO panoptic PNG -> segment ids int32 [H,W] (the dtype panopticapi's rgb2id gives)."""
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


def check_segment_ids(pan: np.ndarray, listed: Sequence[int], path: str, image_id,
                      allowed_extra: Sequence[int] = ()) -> None:
    """Raise ValueError when ids in ``pan`` (VOID aside) and the JSON's segment ids disagree."""
    present = np.unique(pan)
    present = present[present != VOID]
    listed_arr = np.asarray(list(listed), dtype=np.int64)
    known = np.concatenate([listed_arr, np.asarray(list(allowed_extra), dtype=np.int64)])
    extra = present[~np.isin(present, known)]
    if len(extra):
        raise ValueError(f'panoptic PNG {path!r} of image id {image_id} has segment ids {extra.tolist()[:10]} '
                         f'that its JSON segments_info does not list')
    missing = listed_arr[~np.isin(listed_arr, present)]
    if len(missing):
        raise ValueError(f'JSON segments_info of image id {image_id} lists segment ids {missing.tolist()[:10]} '
                         f'that are not in its panoptic PNG {path!r}')


@register_transform
class M2FLoadPanopticAnnotations(LoadAnnotations):
    """mmdet's ``LoadPanopticAnnotations`` without panopticapi, with annotation checks (module docstring).

    Args mirror mmdet's; ``check_ids`` (default True) turns the PNG/JSON id and size checks on."""

    def __init__(self, with_bbox: bool = True, with_label: bool = True, with_mask: bool = True,
                 with_seg: bool = True, box_type: str = 'hbox', imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None, check_ids: bool = True) -> None:
        super().__init__(with_bbox=with_bbox, with_label=with_label, with_mask=with_mask, with_seg=with_seg,
                         with_keypoints=False, box_type=box_type, imdecode_backend=imdecode_backend,
                         backend_args=backend_args)
        self.check_ids = check_ids

    def _load_masks_and_semantic_segs(self, results: dict) -> None:
        path = results.get('seg_map_path')
        if path is None:  # inference without annotations
            return
        image_id = results.get('img_id')
        pan = read_panoptic_ids(path, image_id, self.backend_args, self.imdecode_backend)
        segments: List[dict] = results.get('segments_info', [])
        if self.check_ids:
            if 'height' in results and 'width' in results:
                expected = (int(results['height']), int(results['width']))
            else:
                expected = tuple(results.get('ori_shape', pan.shape))[:2]
            if pan.shape != expected:
                raise ValueError(f'panoptic PNG {path!r} of image id {image_id} is {pan.shape[0]}x{pan.shape[1]} '
                                 f'(HxW) but its image entry says {expected[0]}x{expected[1]}')
            check_segment_ids(pan, [s['id'] for s in segments], path, image_id,
                              results.get('ignored_segment_ids', ()))
        if self.with_mask:
            h, w = tuple(results.get('ori_shape', pan.shape))[:2]
            masks = [(pan == s['id']).astype(np.uint8) for s in segments if s.get('is_thing')]
            results['gt_masks'] = BitmapMasks(masks, h, w)
        if self.with_seg:
            results['gt_seg_map'] = panoptic_semantic_map(pan, [s['id'] for s in segments],
                                                          [s['category'] for s in segments])

    def transform(self, results: dict) -> dict:
        """Adds gt_bboxes, gt_bboxes_labels, gt_ignore_flags, gt_masks, gt_seg_map (as enabled)."""
        if self.with_bbox:
            self._load_bboxes(results)
        if self.with_label:
            self._load_labels(results)
        if self.with_mask or self.with_seg:
            self._load_masks_and_semantic_segs(results)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(with_bbox={self.with_bbox}, with_label={self.with_label}, '
                f'with_mask={self.with_mask}, with_seg={self.with_seg}, check_ids={self.check_ids})')


@register_dataset
class M2FCocoPanopticDataset(CocoPanopticDataset):
    """mmdet's ``CocoPanopticDataset`` + category checks + ``ignored_segment_ids`` (module docstring).

    Args:
        bad_annotations: what an image whose JSON names an unknown ``category_id`` does:
            ``'raise'`` (stop, naming file and segment), ``'skip'`` (leave the image out, logged;
            ``M2FRunner`` sets it for ``train_dataloader.bad_samples='skip'``) or ``'collect'``
            (leave it out and record it in ``annotation_problems``, for ``check_dataset.py``).
        *args, **kwargs: ``CocoPanopticDataset``'s.
    """

    def __init__(self, *args, bad_annotations: str = 'raise', **kwargs) -> None:
        if bad_annotations not in ('raise', 'skip', 'collect'):
            raise ValueError(f"bad_annotations must be 'raise', 'skip' or 'collect', got {bad_annotations!r}")
        self.bad_annotations = bad_annotations
        self.annotation_problems: List[dict] = []  # (collect) file, img_id, problem
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        return [info for info in super().load_data_list() if info is not None]

    def parse_data_info(self, raw_data_info: dict) -> Optional[dict]:
        img_info = raw_data_info['raw_img_info']
        anns = [a for a in raw_data_info['raw_ann_info'] if a['image_id'] == img_info['img_id']]
        for ann in anns:
            if ann['category_id'] not in self.cat2label:
                problem = (f"segment id {ann['id']} has category_id {ann['category_id']}, which is not in the "
                           f'category list {sorted(self.cat2label)} (of the classes in metainfo)')
                where = f"{img_info['file_name']} (image id {img_info['img_id']})"
                if self.bad_annotations == 'raise':
                    raise M2FBadSampleError(f'{where}: {problem}. Fix the annotation file, or list every problem '
                                            'with python tools/misc/check_dataset.py CONFIG')
                if self.bad_annotations == 'collect':
                    file = osp.join(self.data_prefix.get('img') or '', img_info['file_name'])
                    self.annotation_problems.append(dict(file=file, img_id=img_info['img_id'],
                                                         problem=problem))
                else:
                    print_log(f'skipped image {where}: {problem}', logger='current', level=30)
                return None
        data_info = super().parse_data_info(raw_data_info)
        kept = {s['id'] for s in data_info['segments_info']}
        data_info['ignored_segment_ids'] = [a['id'] for a in anns if a['id'] not in kept]
        return data_info
