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

Faults that pycocotools' index would turn into silently wrong targets (repeated image or segment
ids, ids of the wrong type: :mod:`.panoptic_json`) and image / PNG paths that leave their data
folder are found when the annotation file is read; an image that decodes to another size than its
annotation is refused by the loading transform. Each is one :class:`AnnotationMismatchError` /
``M2FBadSampleError`` line naming the file, the image id and the fix.
"""
import os
import os.path as osp
from collections import Counter
from functools import partial
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmdet.datasets import CocoPanopticDataset
from mmdet.datasets.api_wrappers import COCOPanoptic
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.structures.mask import BitmapMasks
from mmengine.logging import print_log

from ..errors import M2FBadSampleError, M2FConfigError
from ..registry import register_dataset, register_transform
from ..structures.panoptic_format import VOID, panoptic_semantic_map, read_panoptic_ids
from .check import KINDS
from .panoptic_json import (DUPLICATE_SEGMENT, WRONG_TYPE, AnnotationFault, category_id_faults, integer_id,
                            panoptic_file_faults)

PNG_DISAGREES = 'annotation disagrees with its PNG'
SIZE_DIFFERS = 'image size differs from annotation'
OUTSIDE_ROOT = 'path outside the data root'
UNKNOWN_CATEGORY = 'unknown category'


class AnnotationMismatchError(ValueError):
    """An image, its panoptic PNG and its JSON entry disagree. ``kind`` names how (a key of
    ``check.KINDS``); ``problem`` is the message without the fix that ``str(err)`` ends with."""

    def __init__(self, problem: str, kind: str = PNG_DISAGREES) -> None:
        super().__init__(f'{problem}; fix: {KINDS[kind]}')
        self.kind, self.problem = kind, problem


def check_listing(listed: Sequence, path: str, image_id) -> None:
    """Raise :class:`AnnotationMismatchError` when a ``segments_info`` lists an id twice or one that is
    not an integer: either would become targets other than the PNG's (a repeated thing is a repeated
    instance; ``500001.5`` is cast to another segment's id)."""
    listed = list(listed)
    not_int = [i for i in listed if integer_id(i) is None]
    if not_int:
        raise AnnotationMismatchError(f'JSON segments_info of image id {image_id} has segment ids {not_int[:10]} that '
                                      f'are not integers (PNG {path!r})', WRONG_TYPE)
    repeated = sorted(i for i, n in Counter(listed).items() if n > 1)
    if repeated:
        raise AnnotationMismatchError(f'JSON segments_info of image id {image_id} lists segment ids {repeated[:10]} '
                                      f'more than once (PNG {path!r})', DUPLICATE_SEGMENT)


def check_segment_ids(pan: np.ndarray, listed: Sequence[int], path: str, image_id,
                      allowed_extra: Sequence[int] = ()) -> None:
    """Raise :class:`AnnotationMismatchError` when ids in ``pan`` (VOID aside) and the JSON's segment ids
    disagree (:func:`check_listing` first)."""
    check_listing(listed, path, image_id)
    present = np.unique(pan)
    present = present[present != VOID]
    listed_arr = np.asarray(list(listed), dtype=np.int64)
    known = np.concatenate([listed_arr, np.asarray(list(allowed_extra), dtype=np.int64)])
    extra = present[~np.isin(present, known)]
    if len(extra):
        raise AnnotationMismatchError(f'panoptic PNG {path!r} of image id {image_id} has segment ids '
                                      f'{extra.tolist()[:10]} that its JSON segments_info does not list')
    missing = listed_arr[~np.isin(listed_arr, present)]
    if len(missing):
        raise AnnotationMismatchError(f'JSON segments_info of image id {image_id} lists segment ids '
                                      f'{missing.tolist()[:10]} that are not in its panoptic PNG {path!r}')


def size_mismatch(image_hw: Optional[Tuple[int, int]], json_hw: Optional[Tuple[int, int]], png_hw: Tuple[int, int],
                  img_path: Optional[str], png_path: str, image_id) -> Optional[AnnotationMismatchError]:
    """The error to raise when the decoded image, its JSON width/height and its PNG (each H x W; None:
    unknown) do not all agree, else None."""
    def text(hw):
        return f'{hw[0]}x{hw[1]}'
    png_hw = tuple(png_hw)
    if json_hw is not None and not all(integer_id(v) is not None for v in json_hw):
        return AnnotationMismatchError(f'image entry of image id {image_id} has height/width {list(json_hw)}, not '
                                       'integers', WRONG_TYPE)
    said = tuple(int(v) for v in json_hw) if json_hw is not None else png_hw
    if image_hw is not None and tuple(image_hw) != said:
        turned = ' (turned by 90 degrees: EXIF orientation?)' if tuple(image_hw) == said[::-1] else ''
        return AnnotationMismatchError(
            f'image {img_path!r} of image id {image_id} decodes to {text(image_hw)} (HxW){turned} but its annotation '
            f'says {text(said)} (JSON width/height) and its panoptic PNG {png_path!r} is {text(png_hw)}', SIZE_DIFFERS)
    if png_hw != said:
        return AnnotationMismatchError(f'panoptic PNG {png_path!r} of image id {image_id} is {text(png_hw)} (HxW) but '
                                       f'its image entry says {text(said)}')
    return None


@register_transform
class M2FLoadPanopticAnnotations(LoadAnnotations):
    """mmdet's ``LoadPanopticAnnotations`` without panopticapi, with annotation checks (module docstring).

    Args mirror mmdet's; ``check_ids`` (default True) turns the PNG/JSON id and size checks on. A
    ``segments_info`` that repeats an id or lists a non-integer one is refused either way."""

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
        check_listing([s['id'] for s in segments], path, image_id)  # never repeated targets, check_ids or not
        if self.check_ids:
            json_hw = (results['height'], results['width']) if 'height' in results and 'width' in results else None
            image_hw = tuple(results['ori_shape'])[:2] if 'ori_shape' in results else None
            mismatch = size_mismatch(image_hw, json_hw, pan.shape, results.get('img_path'), path, image_id)
            if mismatch is not None:
                raise mismatch
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


def inside(folder: str, path: str) -> bool:
    """Whether ``path`` lies in ``folder`` once both are made absolute (``..`` resolved, links not followed:
    a data root that is a link to elsewhere stays one folder)."""
    rel = osp.relpath(osp.abspath(path), osp.abspath(folder or '.'))
    return rel != '..' and not rel.startswith('..' + os.sep)


class _CheckedCOCOPanoptic(COCOPanoptic):
    """mmdet's ``COCOPanoptic`` that checks the raw file before indexing it: the images of
    :func:`~.panoptic_json.panoptic_file_faults` are left out of the index and given to ``on_fault``."""

    def __init__(self, annotation_file: Optional[str] = None, *, on_fault, string_image_ids: bool) -> None:
        self._on_fault, self._string_image_ids = on_fault, string_image_ids
        super().__init__(annotation_file)

    def createIndex(self) -> None:
        bad_categories = category_id_faults(self.dataset)
        if bad_categories:
            raise M2FBadSampleError(f'the annotation file\'s categories are unusable: {bad_categories[0]}. Fix: write '
                                    'category ids as JSON integers')
        faults, self.dataset = panoptic_file_faults(self.dataset, self._string_image_ids)
        for fault in faults:
            self._on_fault(fault)
        super().createIndex()


@register_dataset
class M2FCocoPanopticDataset(CocoPanopticDataset):
    """mmdet's ``CocoPanopticDataset`` + annotation checks + ``ignored_segment_ids`` (module docstring).

    Args:
        bad_annotations: what an image whose annotation cannot be used as written does (an unknown
            ``category_id``, a repeated image or segment id, an id of the wrong type, a path that leaves
            its folder): ``'raise'`` (stop, naming file, image id and fix), ``'skip'`` (leave the image
            out, logged; ``M2FRunner`` sets it for ``train_dataloader.bad_samples='skip'``) or
            ``'collect'`` (leave it out and record it in ``annotation_problems``, for ``check_dataset.py``).
        allow_outside_data_root: accept image / PNG ``file_name``s that lead outside their folder
            (``../x.jpg``, absolute paths); by default such an image is a bad annotation.
        *args, **kwargs: ``CocoPanopticDataset``'s.
    """

    STRING_IMAGE_IDS = False  # COCO's image ids are integers

    def __init__(self, *args, bad_annotations: str = 'raise', allow_outside_data_root: bool = False,
                 **kwargs) -> None:
        if bad_annotations not in ('raise', 'skip', 'collect'):
            raise M2FConfigError(f"bad_annotations must be 'raise', 'skip' or 'collect', got {bad_annotations!r}")
        self.bad_annotations = bad_annotations
        self.allow_outside_data_root = allow_outside_data_root
        self.annotation_problems: List[dict] = []  # (collect) file, img_id, kind, problem
        super().__init__(*args, **kwargs)

    @property
    def COCOAPI(self):  # noqa: N802  mmdet's name: the class it builds the index with
        return partial(_CheckedCOCOPanoptic, on_fault=self._file_fault, string_image_ids=self.STRING_IMAGE_IDS)

    def _file_fault(self, fault: AnnotationFault) -> None:
        folder = self.data_prefix.get(fault.folder) or ''
        self.bad_annotation(osp.join(folder, fault.file), fault.img_id, fault.kind, fault.detail)

    def bad_annotation(self, file: str, img_id, kind: str, problem: str) -> None:
        """Raise, log or record (``bad_annotations``) that image ``img_id`` (``file``) cannot be used."""
        where = f'{file} (image id {img_id})'
        if self.bad_annotations == 'raise':
            raise M2FBadSampleError(f'{where}: {problem}. Fix: {KINDS[kind]}; list every problem with '
                                    'python tools/misc/check_dataset.py CONFIG')
        if self.bad_annotations == 'collect':
            self.annotation_problems.append(dict(file=file, img_id=img_id, kind=kind, problem=problem))
        else:
            print_log(f'skipped image {where}: {kind}: {problem}', logger='current', level=30)

    def image_path(self, file_name: str) -> str:
        """Path of an image from its ``file_name`` in the annotation file."""
        return osp.join(self.data_prefix['img'], file_name)

    def png_name(self, img_info: dict) -> str:
        """``file_name`` of the image's panoptic PNG (COCO: the image's, as ``.png``)."""
        return img_info['file_name'].replace('.jpg', '.png')

    def _outside(self, data_info: dict, names: Tuple[str, str]) -> List[str]:
        """What leaves the data root among the image and PNG paths of ``data_info`` (``names``: their
        ``file_name``s as written). A ``data_prefix`` folder outside ``data_root`` (an absolute
        prefix) is the root of its own files."""
        if self.allow_outside_data_root:
            return []
        found = []
        for key, what, name in (('img', 'image', names[0]), ('seg', 'PNG', names[1])):
            path, prefix = data_info.get('img_path' if key == 'img' else 'seg_map_path'), self.data_prefix[key]
            root = self.data_root if self.data_root and inside(self.data_root, prefix) else prefix
            if path is not None and not inside(root, path):
                found.append(f'{what} file_name {name!r} leads to {osp.normpath(osp.abspath(path))}, outside {root}')
        return found

    def filter_data(self) -> List[dict]:
        self.data_list = [info for info in self.data_list if info is not None]  # images left out by parse
        return super().filter_data()

    def parse_data_info(self, raw_data_info: dict) -> Optional[dict]:
        img_info = raw_data_info['raw_img_info']
        anns = [a for a in raw_data_info['raw_ann_info'] if a['image_id'] == img_info['img_id']]
        file = osp.join(self.data_prefix.get('img') or '', img_info['file_name'])
        for ann in anns:
            if ann['category_id'] not in self.cat2label:
                self.bad_annotation(file, img_info['img_id'], UNKNOWN_CATEGORY,
                                    f"segment id {ann['id']} has category_id {ann['category_id']}, which is not in "
                                    f'the category list {sorted(self.cat2label)} (of the classes in metainfo)')
                return None
        data_info = super().parse_data_info(raw_data_info)
        data_info['img_path'] = self.image_path(img_info['file_name'])
        if self.data_prefix.get('seg'):
            data_info['seg_map_path'] = osp.join(self.data_prefix['seg'], self.png_name(img_info))
        outside = self._outside(data_info, (img_info['file_name'], self.png_name(img_info)))
        if outside:
            self.bad_annotation(file, img_info['img_id'], OUTSIDE_ROOT, '; '.join(outside))
            return None
        kept = {s['id'] for s in data_info['segments_info']}
        data_info['ignored_segment_ids'] = [a['id'] for a in anns if a['id'] not in kept]
        return data_info
