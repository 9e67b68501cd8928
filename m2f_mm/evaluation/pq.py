"""Panoptic quality (PQ, SQ, RQ) in pure numpy, with COCO panopticapi's ``pq_compute`` semantics.

Shape legend: H x W one image, G ground-truth segments, P predicted segments, K categories.

Per image (``pq_stat_single``), as panopticapi: a GT and a predicted segment of the same category
match when IoU > 0.5 (strictly), where the union leaves out the predicted segment's pixels on GT VOID
(id 0); crowd GT segments (``iscrowd=1``) never match and are not false negatives; an unmatched
prediction is not a false positive when more than half of it lies on GT VOID plus the (last listed)
crowd region of its category; pixels of GT ids missing from the GT JSON are neither VOID nor
matchable. The GT segment area is its JSON ``area`` when given (panopticapi), else its pixel count.
PQ/SQ/RQ of a class: iou_sum / (tp + fp/2 + fn/2), iou_sum / tp, tp / (tp + fp/2 + fn/2); a group
(All/Things/Stuff) averages the classes with tp + fp + fn > 0.

Vectorised: ids are mapped to segment slots with ``searchsorted`` and one ``bincount`` gives the whole
(G+2) x (P+1) intersection table (rows: G segments, VOID, unknown ids; columns: P segments, VOID);
no Python loop over pixels or pixel pairs.

Deliberate differences from panopticapi: errors (never silent) for an unknown GT category, a segment
id 0 or a duplicate id in a segments list, and GT/prediction maps of different size; a group with
no class reports 0 with n=0 (panopticapi divides by zero).
"""
import multiprocessing
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..structures.panoptic_format import VOID, load_panoptic_png


@dataclass
class PQStat:
    """Per-category sums: category_ids [K], iou [K] float64, tp/fp/fn [K] int64."""
    category_ids: Tuple[int, ...]
    iou: np.ndarray = field(default=None)
    tp: np.ndarray = field(default=None)
    fp: np.ndarray = field(default=None)
    fn: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        k = len(self.category_ids)
        self.iou = np.zeros(k, np.float64) if self.iou is None else self.iou
        for name in ('tp', 'fp', 'fn'):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(k, np.int64))

    def __iadd__(self, other: 'PQStat') -> 'PQStat':
        if tuple(other.category_ids) != tuple(self.category_ids):
            raise ValueError('cannot add PQ statistics over different category lists')
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


def _segment_table(segments: Sequence[dict], cat_pos: Mapping[int, int], what: str, image_id) -> Dict[str, np.ndarray]:
    ids = np.array([int(s['id']) for s in segments], np.int64)
    if (ids == VOID).any():
        raise ValueError(f'image {image_id}: {what} segments_info lists id 0, which is VOID')
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f'image {image_id}: {what} segments_info has duplicate ids')
    unknown = [s for s in segments if s['category_id'] not in cat_pos]
    if unknown:
        raise KeyError(f"image {image_id}: {what} segment with ID {unknown[0]['id']} has unknown category_id "
                       f"{unknown[0]['category_id']}")
    order = np.argsort(ids, kind='stable')
    cats = np.array([cat_pos[s['category_id']] for s in segments], np.int64)
    crowd = np.array([int(s.get('iscrowd', 0)) == 1 for s in segments], bool)
    return dict(ids=ids[order], cat=cats[order], crowd=crowd[order], order=order)


def _slots(ids: np.ndarray, sorted_ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """ids [N] -> (slot [N] into sorted_ids, known [N] bool)."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    top = max(int(ids.max(initial=0)), int(sorted_ids[-1]))
    if ids.min(initial=0) >= 0 and top <= max(1 << 20, 2 * len(ids)):  # small ids: one table lookup
        lut = np.full(top + 1, -1, np.int64)
        lut[sorted_ids] = np.arange(len(sorted_ids))
        slot = lut[ids]
        return np.maximum(slot, 0), slot >= 0
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return pos, sorted_ids[pos] == ids


def pq_stat_single(gt_ids: np.ndarray, gt_segments: Sequence[dict], pred_ids: np.ndarray,
                   pred_segments: Sequence[dict], categories: Mapping[int, dict], image_id=None) -> PQStat:
    """gt_ids, pred_ids [H,W] segment-id maps (0 = VOID); segments: dicts with id, category_id (+ GT iscrowd,
    area); categories {category_id: {'isthing': 0/1, ...}} -> this image's PQStat."""
    gt_ids, pred_ids = np.asarray(gt_ids), np.asarray(pred_ids)
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f'image {image_id}: prediction of size {pred_ids.shape} but ground truth of size '
                         f'{gt_ids.shape}')
    cat_pos = {c: i for i, c in enumerate(categories)}
    stat = PQStat(tuple(categories))
    gt = _segment_table(gt_segments, cat_pos, 'ground-truth', image_id)
    pr = _segment_table(pred_segments, cat_pos, 'predicted', image_id)
    n_g, n_p = len(gt['ids']), len(pr['ids'])
    gt_flat, pred_flat = gt_ids.reshape(-1).astype(np.int64), pred_ids.reshape(-1).astype(np.int64)
    g_pos, g_known = _slots(gt_flat, gt['ids'])
    g_slot = np.where(g_known, g_pos, np.where(gt_flat == VOID, n_g, n_g + 1))
    p_pos, p_known = _slots(pred_flat, pr['ids'])
    stray = ~p_known & (pred_flat != VOID)
    if stray.any():
        raise KeyError(f'In the image with ID {image_id} segment with ID {int(pred_flat[stray][0])} is presented '
                       f'in PNG and not presented in JSON.')
    p_slot = np.where(p_known, p_pos, n_p)
    table = np.bincount(g_slot * (n_p + 1) + p_slot, minlength=(n_g + 2) * (n_p + 1)).reshape(n_g + 2, n_p + 1)
    pred_area = table[:, :n_p].sum(0)
    if (pred_area == 0).any():
        raise KeyError(f'In the image with ID {image_id} the following segment IDs '
                       f'{pr["ids"][pred_area == 0].tolist()} are presented in JSON and not presented in PNG.')
    pixel_area = table[:n_g].sum(1)
    json_area = [gt_segments[i].get('area') for i in gt['order']]
    gt_area = np.array([pixel_area[j] if a is None else a for j, a in enumerate(json_area)], np.float64)
    inter, void_inter = table[:n_g, :n_p], table[n_g, :n_p]

    cand = (inter > 0) & (gt['cat'][:, None] == pr['cat'][None, :]) & ~gt['crowd'][:, None]
    union = pred_area[None, :] + gt_area[:, None] - inter - void_inter[None, :]
    iou = np.divide(inter, union, out=np.zeros(inter.shape, np.float64), where=cand)
    match = cand & (iou > 0.5)
    rows, cols = np.nonzero(match)                 # row-major = panopticapi's (gt id, pred id) order
    np.add.at(stat.tp, gt['cat'][rows], 1)
    np.add.at(stat.iou, gt['cat'][rows], iou[rows, cols])
    fn = ~match.any(1) & ~gt['crowd']
    np.add.at(stat.fn, gt['cat'][fn], 1)

    crowd_row = np.full(len(cat_pos), -1, np.int64)  # last crowd segment (JSON order) of each category
    sorted_row = np.empty(n_g, np.int64)
    sorted_row[gt['order']] = np.arange(n_g)
    for j in np.nonzero(gt['crowd'][sorted_row])[0]:
        crowd_row[gt['cat'][sorted_row[j]]] = sorted_row[j]
    ignored = void_inter.astype(np.float64)
    row = crowd_row[pr['cat']]
    has = np.nonzero(row >= 0)[0]
    ignored[has] += table[row[has], has]
    fp = ~match.any(0) & ~(ignored / pred_area > 0.5)
    np.add.at(stat.fp, pr['cat'][fp], 1)
    return stat


def _pq_files_worker(args) -> PQStat:
    pairs, gt_folder, pred_folder, categories = args
    stat = PQStat(tuple(categories))
    for gt_ann, pred_ann in pairs:
        gt_ids = load_panoptic_png(osp.join(gt_folder, gt_ann['file_name']))
        pred_ids = load_panoptic_png(osp.join(pred_folder, pred_ann['file_name']))
        stat += pq_stat_single(gt_ids, gt_ann['segments_info'], pred_ids, pred_ann['segments_info'],
                               categories, gt_ann['image_id'])
    return stat


def pq_stat_files(pairs: Sequence[Tuple[dict, dict]], gt_folder: str, pred_folder: str,
                  categories: Mapping[int, dict], workers: int = 0) -> PQStat:
    """pairs of (GT annotation, predicted annotation) COCO dicts with file_name and segments_info; PNGs
    read from the folders; ``workers`` > 1 splits the images over a process pool."""
    categories = dict(categories)
    if workers <= 1 or len(pairs) < 2:
        return _pq_files_worker((list(pairs), gt_folder, pred_folder, categories))
    n = min(workers, len(pairs))
    chunks = [list(pairs[i::n]) for i in range(n)]
    method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else None
    with multiprocessing.get_context(method).Pool(n) as pool:
        parts = pool.map(_pq_files_worker, [(c, gt_folder, pred_folder, categories) for c in chunks])
    stat = PQStat(tuple(categories))
    for part in parts:
        stat += part
    return stat


def match_annotations(gt_json: dict, pred_json: dict) -> List[Tuple[dict, dict]]:
    """COCO panoptic GT and prediction JSONs -> (gt_ann, pred_ann) per GT image; errors for a prediction of an
    image not in the GT and a GT image without a prediction."""
    gt_anns = {a['image_id']: a for a in gt_json['annotations']}
    pred_anns: Dict = {}
    for ann in pred_json['annotations']:
        if ann['image_id'] not in gt_anns:
            raise KeyError(f"prediction for image id {ann['image_id']} ({ann.get('file_name')}), "
                           f'which is not in the ground truth')
        if ann['image_id'] in pred_anns:
            raise KeyError(f"two predictions for image id {ann['image_id']}")
        pred_anns[ann['image_id']] = ann
    missing = [i for i in gt_anns if i not in pred_anns]
    if missing:
        raise KeyError(f'no prediction for the image with id: {missing[0]} ({len(missing)} images missing)')
    return [(gt_anns[i], pred_anns[i]) for i in gt_anns]


def summarize(stat: PQStat, categories: Mapping[int, dict]) -> Dict[str, dict]:
    """-> {'All'|'Things'|'Stuff': {'pq','sq','rq','n'}, 'per_class': {category_id: {'pq','sq','rq'}}}
    as panopticapi's ``pq_average`` (fractions, not percent)."""
    pos = {c: i for i, c in enumerate(stat.category_ids)}
    results: Dict[str, dict] = {}
    for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
        pq = sq = rq = 0.0
        n = 0
        per_class = {}
        for cat_id, info in categories.items():
            if isthing is not None and (info.get('isthing', 0) == 1) != isthing:
                continue
            i = pos[cat_id]
            tp, fp, fn, iou = int(stat.tp[i]), int(stat.fp[i]), int(stat.fn[i]), float(stat.iou[i])
            if tp + fp + fn == 0:
                per_class[cat_id] = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
                continue
            n += 1
            per_class[cat_id] = {'pq': iou / (tp + 0.5 * fp + 0.5 * fn), 'sq': iou / tp if tp else 0.0,
                                 'rq': tp / (tp + 0.5 * fp + 0.5 * fn)}
            pq, sq, rq = pq + per_class[cat_id]['pq'], sq + per_class[cat_id]['sq'], rq + per_class[cat_id]['rq']
        results[name] = {'pq': pq / n if n else 0.0, 'sq': sq / n if n else 0.0, 'rq': rq / n if n else 0.0,
                         'n': n}
        if isthing is None:
            results['per_class'] = per_class
    return results


def format_table(summary: Mapping[str, dict], class_names: Optional[Mapping[int, str]] = None) -> str:
    """The All/Things/Stuff table in percent (+ one row per class when class_names is given)."""
    lines = [f"{'':12s}|{'PQ':>8s}{'SQ':>8s}{'RQ':>8s}{'N':>6s}", '-' * 42]
    for name in ('All', 'Things', 'Stuff'):
        r = summary[name]
        lines.append(f"{name:12s}|{100 * r['pq']:8.3f}{100 * r['sq']:8.3f}{100 * r['rq']:8.3f}{r['n']:6d}")
    if class_names is not None:
        lines.append('-' * 42)
        for cat_id, r in summary['per_class'].items():
            label = str(class_names.get(cat_id, cat_id))[:12]
            lines.append(f"{label:12s}|{100 * r['pq']:8.3f}{100 * r['sq']:8.3f}{100 * r['rq']:8.3f}")
    return '\n'.join(lines)
