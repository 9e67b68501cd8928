"""Predictions as plain arrays and as files in COCO / mmseg formats (no panopticapi).

Files written by :class:`ResultWriter` under ``OUT``::

    OUT/panoptic/NAME.png + OUT/panoptic.json   COCO panoptic: segment id = R + 256 G + 256^2 B, 0 = VOID;
                                                segments_info (id, category_id, area, bbox xywh, iscrowd,
                                                isthing); category ids are the model's class indices,
                                                listed with their names under "categories"
    OUT/instances.json                          COCO results list: image_id, category_id, score, bbox
                                                xywh, segmentation (RLE); one entry per kept instance
    OUT/semantic/NAME.png                       mmseg label PNG: class index, 255 = no class
                                                (16-bit when there are more than 255 classes)
    OUT/images.json                             image id -> file name, height, width

Image ids are 0..N-1 in the order the images were added (``images.json``); the layout is the one
``tools/analysis_tools/eval_panoptic.py`` reads, whose ground truth must use the same ids.

Shape legend: H x W original image size; N instances; C classes (VOID in panoptic maps = C).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from PIL import Image
from pycocotools import mask as mask_utils

from ..structures.panoptic_format import id2rgb, prediction_segments

TASKS = ('panoptic', 'instance', 'semantic')


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def prediction_arrays(sample) -> Dict[str, dict]:
    """A Det/SegDataSample -> {task: arrays} for the tasks it holds:
    panoptic: pan [H, W] int64; instance: masks [N, H, W] bool, labels [N], scores [N], bboxes [N, 4] xyxy;
    semantic: sem [H, W] int64."""
    out: Dict[str, dict] = {}
    if 'pred_panoptic_seg' in sample:
        out['panoptic'] = dict(pan=_numpy(sample.pred_panoptic_seg.sem_seg)[0].astype(np.int64))
    if 'pred_instances' in sample:
        inst = sample.pred_instances
        masks = _numpy(inst.masks).astype(bool) if 'masks' in inst else None
        if masks is None:
            raise ValueError('pred_instances has no masks: m2f_mm models predict instance masks')
        out['instance'] = dict(masks=masks, labels=_numpy(inst.labels).astype(np.int64),
                               scores=_numpy(inst.scores).astype(np.float64),
                               bboxes=_numpy(inst.bboxes) if 'bboxes' in inst else np.zeros((len(masks), 4)))
    if 'pred_sem_seg' in sample:
        field = sample.pred_sem_seg
        sem = field.sem_seg if 'sem_seg' in field else field.data  # mmdet names it sem_seg, mmseg data
        out['semantic'] = dict(sem=_numpy(sem)[0].astype(np.int64))
    return out


def mask_bbox(mask: np.ndarray) -> List[float]:
    """mask [H, W] bool -> COCO box [x, y, w, h] of its pixels ([0, 0, 0, 0] when empty)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def panoptic_to_coco(pan: np.ndarray, num_classes: int, num_things: int):
    """pan [H, W] (label + instance * INSTANCE_OFFSET, VOID = C) -> (RGB [H, W, 3] uint8, segments_info)."""
    ids, segments = prediction_segments(pan, num_classes)
    for seg in segments:
        seg['bbox'] = mask_bbox(ids == seg['id'])
        seg['iscrowd'] = 0
        seg['isthing'] = int(seg['category_id'] < num_things)
    return id2rgb(ids), segments


def instances_to_coco(arrays: dict, image_id: int) -> List[dict]:
    """Instance arrays (see :func:`prediction_arrays`) -> COCO result entries with RLE masks."""
    entries = []
    for mask, label, score in zip(arrays['masks'], arrays['labels'], arrays['scores']):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        entries.append(dict(image_id=image_id, category_id=int(label), score=float(score), bbox=mask_bbox(mask),
                            segmentation=rle))
    return entries


def semantic_png(sem: np.ndarray, num_classes: int) -> Image.Image:
    """sem [H, W] -> label PNG (8-bit, 255 = no class; 16-bit, 65535 = no class, above 255 classes)."""
    dtype, void = (np.uint8, 255) if num_classes <= 255 else (np.uint16, 65535)
    return Image.fromarray(np.where((sem >= 0) & (sem < num_classes), sem, void).astype(dtype))


class ResultWriter:
    """Collects predictions image by image and writes the files in the module docstring.

    Args:
        out_dir: output folder (created).
        classes: class names, things first.
        num_things: number of thing classes (panoptic ``isthing``); default: all classes are things.
    """

    def __init__(self, out_dir: str, classes: Sequence[str], num_things: Optional[int] = None) -> None:
        self.out_dir, self.classes = out_dir, list(classes)
        self.num_things = len(self.classes) if num_things is None else num_things
        self.images: List[dict] = []
        self.panoptic: List[dict] = []
        self.instances: List[dict] = []
        self.has_instances = False  # instances.json is written when asked for, even with no instance
        os.makedirs(out_dir, exist_ok=True)

    def add(self, sample, name: str, tasks: Sequence[str] = TASKS) -> Dict[str, str]:
        """Write the files of one sample (an image named ``name``, without extension); -> {task: path}."""
        arrays = prediction_arrays(sample)
        image_id = len(self.images)
        shape = next(iter(v for a in arrays.values() for v in a.values() if np.ndim(v) >= 2)).shape[-2:]
        self.images.append(dict(id=image_id, file_name=osp.basename(sample.metainfo.get('img_path', name)),
                                height=int(shape[0]), width=int(shape[1])))
        written = {}
        if 'panoptic' in tasks and 'panoptic' in arrays:
            rgb, segments = panoptic_to_coco(arrays['panoptic']['pan'], len(self.classes), self.num_things)
            path = osp.join(self.out_dir, 'panoptic', f'{name}.png')
            os.makedirs(osp.dirname(path), exist_ok=True)
            Image.fromarray(rgb).save(path)
            self.panoptic.append(dict(image_id=image_id, file_name=f'{name}.png', segments_info=segments))
            written['panoptic'] = path
        if 'instance' in tasks and 'instance' in arrays:
            self.instances += instances_to_coco(arrays['instance'], image_id)
            self.has_instances = True
            written['instance'] = osp.join(self.out_dir, 'instances.json')
        if 'semantic' in tasks and 'semantic' in arrays:
            path = osp.join(self.out_dir, 'semantic', f'{name}.png')
            os.makedirs(osp.dirname(path), exist_ok=True)
            semantic_png(arrays['semantic']['sem'], len(self.classes)).save(path)
            written['semantic'] = path
        return written

    def close(self) -> List[str]:
        """Write the JSON files; -> their paths."""
        categories = [dict(id=i, name=n, isthing=int(i < self.num_things)) for i, n in enumerate(self.classes)]
        files = {'images.json': self.images}
        if self.panoptic:
            files['panoptic.json'] = dict(images=self.images, annotations=self.panoptic, categories=categories)
        if self.has_instances:
            files['instances.json'] = self.instances
        paths = []
        for name, content in files.items():
            path = osp.join(self.out_dir, name)
            with open(path, 'w') as f:
                json.dump(content, f)
            paths.append(path)
        return paths


__all__ = ['INSTANCE_OFFSET', 'TASKS', 'ResultWriter', 'prediction_arrays', 'panoptic_to_coco', 'instances_to_coco',
           'semantic_png', 'mask_bbox']
