"""Registered metrics: COCO panoptic PQ without panopticapi, and mIoU of the semantic output.

Shape legend: H x W one image at ``ori_shape``; C classes (things first); N GT thing instances.

``M2FCocoPanopticMetric`` evaluates each image as it arrives (``pq.pq_stat_single``; only the small
per-class sums are kept and gathered across ranks). Predictions: ``pred_panoptic_seg.sem_seg``
[1,H,W] with label + instance * INSTANCE_OFFSET and VOID = C (or its ``ignore_index``). Ground truth,
first that applies:
1. ``ann_file`` + ``seg_prefix``: the COCO panoptic JSON and PNGs (panopticapi's exact definition);
2. ``seg_map_path`` + ``segments_info`` in the sample (mmdet's dataset format; PNG read);
3. ``gt_sem_seg`` + ``gt_instances`` of the sample (what mmdet's PackDetInputs leaves): every
   instance mask is a segment, every stuff class one segment, and thing-class pixels no instance
   covers one crowd segment per class (panopticapi absorbs false positives only into the *last*
   crowd region of a class; here all crowd regions of a class are one).
Errors, never silent: a prediction for an image not in ``ann_file``, an image of ``ann_file``
without a prediction, two predictions for one image, prediction and GT of different size.
``outfile_prefix`` writes ``{prefix}.panoptic/*.png`` + ``{prefix}.panoptic.json`` (COCO format);
``format_only`` writes them without evaluating.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_text
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation.metrics import IoUMetric
from PIL import Image

from ..errors import M2FConfigError
from ..registry import register_metric
from ..structures.panoptic_format import id2rgb, panoptic_semantic_map, prediction_segments, read_panoptic_ids
from .pq import PQStat, format_table, pq_stat_single, summarize


def _pixels(field) -> np.ndarray:
    """PixelData or its dict -> numpy [H,W] of ``sem_seg`` (mmdet) or ``data`` (mmseg)."""
    get = field.get if isinstance(field, dict) else (lambda k: getattr(field, k, None))
    value = get('sem_seg') if get('sem_seg') is not None else get('data')
    value = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return value.reshape(value.shape[-2:])


def check_prediction_labels(labels: np.ndarray, num_classes: int, image, allowed=()) -> None:
    """Raise M2FConfigError naming the class id when predicted ``labels`` fall outside the dataset's classes.

    A model built for more classes than the dataset has predicts ids the metric cannot map.
    """
    labels = np.asarray(labels)
    bad = labels[((labels < 0) | (labels >= num_classes)) & ~np.isin(labels, list(allowed))]
    if bad.size:
        raise M2FConfigError(
            f'the prediction for image {image} has class id {int(bad.flat[0])}, but the dataset has {num_classes} '
            f'classes (0..{num_classes - 1}): the model was built for more classes than the dataset. Set '
            'model.panoptic_head.num_things_classes / num_stuff_classes (and panoptic_fusion_head\'s), or '
            'model.decode_head.num_classes for mmseg, to the dataset\'s counts')


def segments_from_sample(sem: np.ndarray, masks: np.ndarray, labels: np.ndarray, num_things: int,
                         ignore_index: int = 255) -> Tuple[np.ndarray, List[dict]]:
    """gt sem [H,W], instance masks [N,H,W], labels [N] -> (ids [H,W], segments); see module docstring, 3."""
    ids = np.where(sem == ignore_index, 0, sem.astype(np.int64) + 1)
    for k, (mask, label) in enumerate(zip(masks, labels)):
        ids[mask.astype(bool)] = (k + 1) * INSTANCE_OFFSET + int(label)
    uniq = np.unique(ids)
    segments = [dict(id=int(i), category_id=int(i % INSTANCE_OFFSET if i >= INSTANCE_OFFSET else i - 1),
                     iscrowd=int(i < INSTANCE_OFFSET and i - 1 < num_things)) for i in uniq if i != 0]
    return ids, segments


@register_metric
class M2FCocoPanopticMetric(BaseMetric):
    """PQ / SQ / RQ (All, Things, Stuff; per class with ``classwise``) in percent; see the module docstring."""
    default_prefix: Optional[str] = 'coco_panoptic'

    def __init__(self, ann_file: Optional[str] = None, seg_prefix: Optional[str] = None, classwise: bool = False,
                 format_only: bool = False, outfile_prefix: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, backend_args: Optional[dict] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and outfile_prefix is None:
            raise M2FConfigError('format_only=True needs outfile_prefix (where the results go)')
        if ann_file is not None and seg_prefix is None:
            raise M2FConfigError('ann_file needs seg_prefix, the folder of its panoptic PNGs')
        self.classwise, self.format_only, self.outfile_prefix = classwise, format_only, outfile_prefix
        self.seg_prefix = seg_prefix
        self.backend_args = backend_args  # for ann_file and the ground-truth PNGs (mmengine.fileio)
        self.gt_json = None
        if ann_file is not None:
            self.gt_json = json.loads(get_text(ann_file, backend_args=backend_args))
            self.gt_anns = {a['image_id']: a for a in self.gt_json.get('annotations', [])}
            self.gt_images = {i['id']: i for i in self.gt_json['images']}

    def _categories(self) -> Tuple[Dict[int, dict], Optional[Dict[int, int]]]:
        """-> ({category_id: info}, label2cat or None when category ids are the contiguous labels)."""
        classes = list(self.dataset_meta.get('classes', [])) if self.dataset_meta else []
        if self.gt_json is not None:
            cats = {c['id']: c for c in self.gt_json['categories']}
            by_name = {c['name']: c['id'] for c in self.gt_json['categories']}
            missing = [n for n in classes if n not in by_name]
            if missing:
                raise KeyError(f'classes {missing} of the dataset are not categories of ann_file')
            order = [by_name[n] for n in classes] if classes else list(cats)
            return cats, dict(enumerate(order))
        things = set(self.dataset_meta.get('thing_classes', []))
        return {i: {'id': i, 'name': n, 'isthing': int(n in things)} for i, n in enumerate(classes)}, None

    def _ground_truth(self, ds: dict, img_id) -> Tuple[np.ndarray, List[dict]]:
        if self.gt_json is not None:
            if img_id not in self.gt_images:
                raise KeyError(f"prediction for image id {img_id} ({ds.get('img_path')}), which is not in ann_file")
            if img_id not in self.gt_anns:
                raise KeyError(f"image id {img_id} ({self.gt_images[img_id].get('file_name')}) is in ann_file's images "
                               'but has no entry in its annotations: add one with file_name and segments_info '
                               '(an image without segments has segments_info=[])')
            ann = self.gt_anns[img_id]
            path = osp.join(self.seg_prefix, ann['file_name'])
            return read_panoptic_ids(path, img_id, self.backend_args).astype(np.int64), ann['segments_info']
        num_things = len(self.dataset_meta.get('thing_classes', []))
        if ds.get('seg_map_path') and ds.get('segments_info') is not None:
            pan = read_panoptic_ids(ds['seg_map_path'], img_id)
            segs = [dict(id=s['id'], category_id=s['category'],
                         iscrowd=int(s['category'] < num_things and not s.get('is_thing')))
                    for s in ds['segments_info']]
            return pan, segs
        if 'gt_sem_seg' not in ds:
            raise KeyError(f'no ground truth for image id {img_id}: give ann_file + seg_prefix, or keep gt_sem_seg '
                           f'(and gt_instances) or seg_map_path + segments_info in the data samples')
        inst = ds.get('gt_instances', {})
        masks = inst.get('masks', np.zeros((0, 1, 1), np.uint8))
        masks = masks.masks if hasattr(masks, 'masks') else np.asarray(masks.cpu() if torch.is_tensor(masks) else masks)
        labels = np.asarray(inst['labels'].cpu()) if 'labels' in inst else np.zeros(0, np.int64)
        return segments_from_sample(_pixels(ds['gt_sem_seg']), masks, labels, num_things)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Evaluates each sample now; keeps (img_id, PQStat or None, COCO annotation or None)."""
        categories, label2cat = self._categories()
        num_classes = len(self.dataset_meta['classes'])
        for ds in data_samples:
            img_id = ds['img_id']
            pred_field = ds['pred_panoptic_seg']
            ignore = pred_field.get('ignore_index') if isinstance(pred_field, dict) else None
            pan = _pixels(pred_field)
            check_prediction_labels(np.unique(pan) % INSTANCE_OFFSET, num_classes, ds.get('img_path', img_id),
                                    allowed=(num_classes, ignore) if ignore is not None else (num_classes, ))
            ids, segments = prediction_segments(pan, num_classes, label2cat, ignore)
            segm_file = osp.basename(ds.get('img_path', f'{img_id}.jpg')).replace('.jpg', '.png')
            ann = None
            if self.outfile_prefix is not None:
                out_dir = f'{self.outfile_prefix}.panoptic'
                os.makedirs(out_dir, exist_ok=True)
                Image.fromarray(id2rgb(ids)).save(osp.join(out_dir, segm_file))
                ann = dict(image_id=img_id, file_name=segm_file, segments_info=segments)
            stat = None
            if not self.format_only:
                gt_ids, gt_segs = self._ground_truth(ds, img_id)
                stat = pq_stat_single(gt_ids, gt_segs, ids, segments, categories, img_id)
            self.results.append((img_id, stat, ann))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        seen = [r[0] for r in results]
        if len(set(seen)) != len(seen):
            dup = sorted({i for i in seen if seen.count(i) > 1})[:5]
            raise KeyError(f'more than one prediction for image ids {dup}')
        if self.gt_json is not None:
            missing = sorted(set(self.gt_images) - set(seen))
            if missing:
                raise KeyError(f'no prediction for {len(missing)} images of ann_file, e.g. image id {missing[0]}')
        if self.outfile_prefix is not None:
            with open(f'{self.outfile_prefix}.panoptic.json', 'w') as f:
                json.dump(dict(annotations=[r[2] for r in results]), f)
            logger.info(f'panoptic results written to {self.outfile_prefix}.panoptic(.json)')
        if self.format_only:
            return dict()
        categories, _ = self._categories()
        stat = PQStat(tuple(categories))
        for _, image_stat, _ in results:
            stat += image_stat
        summary = summarize(stat, categories)
        names = {c: info.get('name', c) for c, info in categories.items()}
        print_log('Panoptic Evaluation Results:\n' + format_table(summary, names if self.classwise else None),
                  logger=logger)
        metrics = {}
        for key, group in (('', 'All'), ('_th', 'Things'), ('_st', 'Stuff')):
            for m in ('PQ', 'SQ', 'RQ'):
                metrics[m + key] = 100 * summary[group][m.lower()]
        if self.classwise:
            for cat_id, r in summary['per_class'].items():
                metrics[f'{names[cat_id]}_PQ'] = 100 * r['pq']
        return metrics


@register_metric
class M2FSemSegMetric(IoUMetric):
    """mmseg's IoUMetric (aAcc, mIoU, mAcc) for DetDataSample or SegDataSample: ``pred_sem_seg`` against
    ``gt_sem_seg`` or, when absent, the semantic map of the sample's panoptic PNG (``seg_map_path`` +
    ``segments_info``); thing + stuff class ids, ``ignore_index`` (255) for VOID."""

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for ds in data_samples:
            pred = _pixels(ds['pred_sem_seg'])
            check_prediction_labels(np.unique(pred), num_classes, ds.get('img_path', ds.get('img_id')),
                                    allowed=(self.ignore_index, ))
            if 'gt_sem_seg' in ds:
                gt = _pixels(ds['gt_sem_seg'])
            elif ds.get('seg_map_path') and ds.get('segments_info') is not None:
                pan = read_panoptic_ids(ds['seg_map_path'], ds.get('img_id'))
                segs = ds['segments_info']
                gt = panoptic_semantic_map(pan, [s['id'] for s in segs], [s['category'] for s in segs],
                                           self.ignore_index)
            else:
                raise KeyError(f"no semantic ground truth for image {ds.get('img_path', ds.get('img_id'))}")
            if pred.shape != gt.shape:
                raise ValueError(f"image {ds.get('img_path', ds.get('img_id'))}: prediction of size {pred.shape} "
                                 f'but ground truth of size {gt.shape}')
            self.results.append(self.intersect_and_union(torch.from_numpy(pred.astype(np.int64)),
                                                         torch.from_numpy(gt.astype(np.int64)), num_classes,
                                                         self.ignore_index))
