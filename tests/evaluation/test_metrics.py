"""Registered metrics: M2FCocoPanopticMetric (vs mmdet's CocoPanopticMetric run on panopticapi's own
accumulator), its ground-truth sources, files and errors; M2FSemSegMetric."""
import json
import runpy
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks
from PIL import Image

from m2f_mm.evaluation.metrics import M2FCocoPanopticMetric, M2FSemSegMetric
from m2f_mm.structures.panoptic_format import id2rgb, rgb2id
from m2f_mm.registry import METRICS

CLASSES, THINGS, CAT_IDS = ('a', 'b', 'sky', 'grass'), ('a', 'b'), (3, 5, 20, 21)
META = dict(classes=CLASSES, thing_classes=THINGS, stuff_classes=('sky', 'grass'))
VOID = len(CLASSES)
REPO = Path(__file__).resolve().parents[2]
KINDS = [(0, 1), (0, 2), (1, 1), (1, 2), (1, 3), (2, 0), (3, 0)]  # (label, instance)


def scene(seed, h=16, w=24):
    """GT and prediction in label space (label + instance * 1000, VOID = 4); GT instance b/3 is a crowd."""
    rng = np.random.default_rng(seed)
    values = np.array([label + inst * 1000 for label, inst in KINDS])
    gt = np.kron(values[rng.integers(0, len(KINDS), (h // 4, w // 4))], np.ones((4, 4), np.int64))
    gt[rng.random((h, w)) < 0.05] = VOID
    pred = gt.copy()
    flip = rng.random((h, w)) < 0.2
    pred[flip] = values[rng.integers(0, len(KINDS), flip.sum())]
    pred[rng.random((h, w)) < 0.03] = VOID
    return gt, pred


def write_gt(tmp_path, gts):
    """COCO panoptic JSON + PNGs of label-space GT maps (image k: k.jpg / k.png)."""
    (tmp_path / 'gt').mkdir(exist_ok=True)
    anns = []
    for k, gt in enumerate(gts):
        ids = np.where(gt == VOID, 0, gt)
        Image.fromarray(id2rgb(ids)).save(tmp_path / 'gt' / f'{k}.png')
        segs = [dict(id=int(i), category_id=CAT_IDS[i % 1000], iscrowd=int(i == 3001), area=int((ids == i).sum()))
                for i in np.unique(ids) if i]
        anns.append(dict(image_id=k, file_name=f'{k}.png', segments_info=segs))
    cats = [dict(id=c, name=n, isthing=int(n in THINGS)) for c, n in zip(CAT_IDS, CLASSES)]
    images = [dict(id=k, file_name=f'{k}.jpg', height=g.shape[0], width=g.shape[1]) for k, g in enumerate(gts)]
    (tmp_path / 'gt.json').write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return str(tmp_path / 'gt.json'), str(tmp_path / 'gt')


def sample(k, gt, pred, with_gt=True):
    ds = dict(img_id=k, img_path=f'/data/{k}.jpg', ori_shape=gt.shape,
              pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pred)[None].int()))
    if with_gt:
        sem = np.where(gt == VOID, 255, gt % 1000)
        things = [i for i in np.unique(gt) if i % 1000 < len(THINGS) and i != 3001]
        ds['gt_sem_seg'] = dict(sem_seg=torch.from_numpy(sem)[None])
        ds['gt_instances'] = dict(masks=BitmapMasks(np.stack([(gt == i) for i in things]).astype(np.uint8), *gt.shape),
                                  labels=torch.tensor([i % 1000 for i in things]))
    return ds


def run(metric, samples):
    metric.dataset_meta = META
    metric.process({}, samples)
    return metric.evaluate(len(samples))


class _RefPQStat:
    """panopticapi's PQStat (accumulator + pq_average), which mmdet's CocoPanopticMetric imports."""

    class Cat:
        def __init__(self):
            self.iou, self.tp, self.fp, self.fn = 0.0, 0, 0, 0

    def __init__(self):
        self.pq_per_cat = defaultdict(self.Cat)

    def __getitem__(self, i):
        return self.pq_per_cat[i]

    def __iadd__(self, other):
        for label, c in other.pq_per_cat.items():
            s = self.pq_per_cat[label]
            s.iou, s.tp, s.fp, s.fn = s.iou + c.iou, s.tp + c.tp, s.fp + c.fp, s.fn + c.fn
        return self

    def pq_average(self, categories, isthing):
        pq, sq, rq, n, per_class = 0, 0, 0, 0, {}
        for label, info in categories.items():
            if isthing is not None and (info['isthing'] == 1) != isthing:
                continue
            c = self.pq_per_cat[label]
            if c.tp + c.fp + c.fn == 0:
                per_class[label] = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
                continue
            n += 1
            per_class[label] = {'pq': c.iou / (c.tp + 0.5 * c.fp + 0.5 * c.fn), 'sq': c.iou / c.tp if c.tp else 0,
                                'rq': c.tp / (c.tp + 0.5 * c.fp + 0.5 * c.fn)}
            pq, sq, rq = pq + per_class[label]['pq'], sq + per_class[label]['sq'], rq + per_class[label]['rq']
        return {'pq': pq / n, 'sq': sq / n, 'rq': rq / n, 'n': n}, per_class


def test_matches_mmdet_coco_panoptic_metric(tmp_path, monkeypatch):
    from mmdet.evaluation.functional import panoptic_utils
    from mmdet.evaluation.metrics import coco_panoptic_metric as cpm
    for module in (cpm, panoptic_utils):
        monkeypatch.setattr(module, 'PQStat', _RefPQStat)
        monkeypatch.setattr(module, 'rgb2id', lambda c: rgb2id(c).astype(np.int32))
        monkeypatch.setattr(module, 'VOID', 0)
    monkeypatch.setattr(cpm, 'panopticapi', object())
    monkeypatch.setattr(cpm, 'id2rgb', id2rgb)
    pairs = [scene(s) for s in range(4)]
    ann_file, seg_prefix = write_gt(tmp_path, [g for g, _ in pairs])
    samples = [sample(k, g, p, with_gt=False) for k, (g, p) in enumerate(pairs)]
    theirs = run(cpm.CocoPanopticMetric(ann_file=ann_file, seg_prefix=seg_prefix), samples)
    ours = run(M2FCocoPanopticMetric(ann_file=ann_file, seg_prefix=seg_prefix), samples)
    assert set(ours) == set(theirs) and 0 < ours['coco_panoptic/PQ'] < 100
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_ground_truth_from_data_samples_equals_annotation_files(tmp_path):
    pairs = [scene(s) for s in range(10, 13)]
    ann_file, seg_prefix = write_gt(tmp_path, [g for g, _ in pairs])
    from_files = run(M2FCocoPanopticMetric(ann_file=ann_file, seg_prefix=seg_prefix),
                     [sample(k, g, p, with_gt=False) for k, (g, p) in enumerate(pairs)])
    from_samples = run(METRICS.build(dict(type='M2FCocoPanopticMetric', classwise=True)),
                       [sample(k, g, p) for k, (g, p) in enumerate(pairs)])
    for key, value in from_files.items():
        assert from_samples[key] == pytest.approx(value, abs=1e-9), key
    assert 'coco_panoptic/sky_PQ' in from_samples
    perfect = run(M2FCocoPanopticMetric(), [sample(k, g, g) for k, (g, _) in enumerate(pairs)])
    assert perfect['coco_panoptic/PQ'] == perfect['coco_panoptic/PQ_th'] == perfect['coco_panoptic/PQ_st'] == 100


def test_outfile_prefix_writes_coco_results_that_eval_tool_scores_identically(tmp_path, capsys, monkeypatch):
    pairs = [scene(s) for s in range(20, 23)]
    ann_file, seg_prefix = write_gt(tmp_path, [g for g, _ in pairs])
    samples = [sample(k, g, p, with_gt=False) for k, (g, p) in enumerate(pairs)]
    prefix = str(tmp_path / 'out' / 'res')
    assert run(M2FCocoPanopticMetric(format_only=True, outfile_prefix=prefix), samples) == {}
    written = json.loads((tmp_path / 'out' / 'res.panoptic.json').read_text())
    assert [a['file_name'] for a in written['annotations']] == ['0.png', '1.png', '2.png']
    evaluated = run(M2FCocoPanopticMetric(ann_file=ann_file, seg_prefix=seg_prefix, outfile_prefix=prefix), samples)
    written = json.loads((tmp_path / 'out' / 'res.panoptic.json').read_text())
    assert {s['category_id'] for a in written['annotations'] for s in a['segments_info']} <= set(CAT_IDS)
    monkeypatch.setattr(sys, 'argv', ['eval_panoptic.py', '--gt-json', ann_file, '--gt-dir', seg_prefix,
                                      '--pred-json', prefix + '.panoptic.json', '--pred-dir', prefix + '.panoptic',
                                      '--workers', '2'])
    runpy.run_path(str(REPO / 'tools' / 'analysis_tools' / 'eval_panoptic.py'), run_name='__main__')
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith('All'))
    assert float(row.split('|')[1].split()[0]) == pytest.approx(evaluated['coco_panoptic/PQ'], abs=1e-3)


def test_errors_are_never_silent(tmp_path):
    pairs = [scene(s) for s in range(2)]
    ann_file, seg_prefix = write_gt(tmp_path, [g for g, _ in pairs])
    metric = M2FCocoPanopticMetric(ann_file=ann_file, seg_prefix=seg_prefix)
    with pytest.raises(KeyError, match='image id 5'):       # prediction for an image not in the GT
        run(metric, [sample(5, *pairs[0])])
    with pytest.raises(KeyError, match='no prediction for 1 images of ann_file, e.g. image id 1'):
        run(M2FCocoPanopticMetric(ann_file=ann_file, seg_prefix=seg_prefix), [sample(0, *pairs[0])])
    gt, pred = pairs[0]
    with pytest.raises(ValueError, match='image 0: prediction of size'):  # wrong size
        run(M2FCocoPanopticMetric(ann_file=ann_file, seg_prefix=seg_prefix), [sample(0, gt, pred[:, :-4])])
    with pytest.raises(KeyError, match='more than one prediction'):
        run(M2FCocoPanopticMetric(), [sample(0, gt, pred), sample(0, gt, pred)])
    with pytest.raises(KeyError, match='no ground truth for image id 0'):
        run(M2FCocoPanopticMetric(), [sample(0, gt, pred, with_gt=False)])


def test_semantic_metric_on_det_samples_and_panoptic_png(tmp_path):
    gt = np.array([[0, 0, 2, 2], [1, 1, 255, 3]])
    pred = np.array([[0, 1, 2, 2], [1, 1, 0, 3]])
    ds = dict(img_id=0, pred_sem_seg=dict(sem_seg=torch.from_numpy(pred)[None]),
              gt_sem_seg=dict(sem_seg=torch.from_numpy(gt)[None]))
    res = run(METRICS.build(dict(type='M2FSemSegMetric')), [ds])
    assert res['aAcc'] == pytest.approx(100 * 6 / 7, abs=0.01)
    assert res['mIoU'] == pytest.approx(100 * (1 / 2 + 2 / 3 + 1 + 1) / 4, abs=0.01)
    ids = np.array([[7, 7, 9, 9], [8, 8, 0, 6]])            # panoptic PNG: the same GT as segments
    Image.fromarray(id2rgb(ids)).save(tmp_path / 'p.png')
    segs = [dict(id=7, category=0), dict(id=8, category=1), dict(id=9, category=2), dict(id=6, category=3)]
    ds = dict(img_id=0, pred_sem_seg=ds['pred_sem_seg'], seg_map_path=str(tmp_path / 'p.png'), segments_info=segs)
    assert run(M2FSemSegMetric(), [ds]) == res
    with pytest.raises(ValueError, match='prediction of size'):
        run(M2FSemSegMetric(), [dict(ds, pred_sem_seg=dict(sem_seg=torch.zeros(1, 2, 3)))])


def test_a_class_the_dataset_does_not_have_is_named_with_the_option(tmp_path):
    """A model built for more classes than the dataset: a clear error, with or without the class-check hook."""
    gt, pred = scene(0)
    pred = pred.copy()
    pred[0, 0] = 6 + 2000                                    # class 6 of a 7-class model; the dataset has 4
    with pytest.raises(ValueError, match=r'/data/0\.jpg has class id 6, but the dataset has 4 classes.*'
                                         r'num_things_classes / num_stuff_classes'):
        run(M2FCocoPanopticMetric(), [sample(0, gt, pred)])
    sem = dict(img_id=0, img_path='/data/0.jpg', pred_sem_seg=dict(sem_seg=torch.tensor([[[0, 5]]])),
               gt_sem_seg=dict(sem_seg=torch.tensor([[[0, 1]]])))
    with pytest.raises(ValueError, match=r'class id 5, but the dataset has 4 classes.*decode_head.num_classes'):
        run(M2FSemSegMetric(), [sem])
    run(M2FCocoPanopticMetric(), [sample(0, *scene(0))])       # VOID (= 4) and real classes pass


@pytest.mark.slow
@pytest.mark.parametrize('content, expected', [
    ('[{"image_id": 0}]', 'holds a list; expected a COCO panoptic object'),
    ('{"annotations": [{"image_id": 0}]}', 'annotation 0 is not an object with image_id, file_name, segments_info'),
    ('{"annotations": ', 'cannot read it as JSON')])
def test_eval_tool_names_a_malformed_prediction_json_in_one_line(tmp_path, content, expected):
    import subprocess
    ann_file, seg_prefix = write_gt(tmp_path, [scene(0)[0]])
    (tmp_path / 'pred.json').write_text(content)
    out = subprocess.run([sys.executable, str(REPO / 'tools' / 'analysis_tools' / 'eval_panoptic.py'), '--gt-json', ann_file,
                          '--gt-dir', seg_prefix, '--pred-json', str(tmp_path / 'pred.json'), '--pred-dir',
                          seg_prefix], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1 and expected in out.stderr
