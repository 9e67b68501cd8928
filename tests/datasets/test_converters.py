"""Dataset converters (m2f_mm/datasets/convert): hand-drawn fixtures in, the project's real loaders out.

Every fixture is drawn here with numpy rectangles (48 x 64 px images); the expected panoptic / semantic
answer is written down from the drawing, not computed by the converter. The outputs are read back with
M2FPanopticDataset + M2FLoadPanopticAnnotations (panoptic), pycocotools (instances) and mmseg's
BaseSegDataset + LoadAnnotations (semantic), and scored with the project's metrics.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from m2f_mm.datasets.convert import ConversionError
from m2f_mm.datasets.convert import coco_instances, instance_pngs, semantic_pngs
from m2f_mm.registry import DATASETS

H, W = 48, 64
COIN, BACKGROUND, VOID = 0, 1, 255  # labels of the output (things first)


def _image(path, seed, hw=(H, W)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, hw + (3, ), dtype=np.uint8)).save(path)


def _box(rows, cols):
    mask = np.zeros((H, W), bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def _rect_polygon(rows, cols):
    """A polygon along pixel borders: COCO's rasterisation covers rows[0]..rows[1]-1, cols[0]..cols[1]-1."""
    (y0, y1), (x0, x1) = rows, cols
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _uncompressed_rle(mask):
    flat = mask.ravel(order='F').astype(np.uint8)
    runs, value, count = [], 0, 0
    for v in flat:
        if v == value:
            count += 1
        else:
            runs.append(count)
            value, count = v, 1
    runs.append(count)
    return dict(size=[H, W], counts=runs)


def _panoptic_readback(out, split):
    """(dataset, [results of LoadImageFromFile + M2FLoadPanopticAnnotations per image])."""
    init_default_scope('mmdet')
    dataset = DATASETS.build(dict(
        type='M2FPanopticDataset', data_root=str(out), ann_file=f'annotations/panoptic_{split}.json',
        data_prefix=dict(img=f'{split}/', seg=f'annotations/panoptic_{split}/'), test_mode=True,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='M2FLoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True)]))
    return dataset, [dataset[k] for k in range(len(dataset))]


def _semantic_readback(out, split):
    """mmseg's BaseSegDataset + LoadAnnotations on OUT, classes from OUT/classes.json."""
    meta = json.loads((out / 'classes.json').read_text())
    init_default_scope('mmseg')
    from mmseg.registry import DATASETS as SEG_DATASETS
    dataset = SEG_DATASETS.build(dict(
        type='BaseSegDataset', data_root=str(out), img_suffix=meta['img_suffix'], seg_map_suffix='.png',
        metainfo=dict(classes=tuple(meta['classes']), palette=meta['palette']),
        data_prefix=dict(img_path=split, seg_map_path=f'annotations/semantic_{split}'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]))
    init_default_scope('mmdet')
    return {osp.basename(r['img_path']): r['gt_seg_map'] for r in (dataset[k] for k in range(len(dataset)))}


# -- COCO instances (+ stuff PNGs) -> panoptic -----------------------------------------------------------------

SMALL_COIN, LARGE_COIN = ((4, 20), (4, 24)), ((10, 30), (16, 40))  # overlap: rows 10-19, cols 16-23
CROWD = ((34, 46), (44, 60))
UNINSTANCED_COIN = ((36, 46), (2, 10))  # 'coin' in the stuff PNG, no instance: VOID


def _coco_fixture(tmp_path):
    """Image 1: a small and a large coin overlapping (small listed first, as a polygon; large as compressed
    RLE), a crowd of coins (uncompressed RLE); stuff PNG: background, VOID rows 0-1, an un-instanced coin
    patch. Image 2: no annotation, stuff background only."""
    for name, seed in (('a.jpg', 1), ('b.jpg', 2)):
        _image(tmp_path / 'images' / name, seed)
    large = mask_utils.encode(np.asfortranarray(_box(*LARGE_COIN).astype(np.uint8)))
    data = dict(
        images=[dict(id=1, file_name='a.jpg', height=H, width=W), dict(id=2, file_name='b.jpg', height=H, width=W)],
        categories=[dict(id=7, name='coin')],
        annotations=[
            dict(id=10, image_id=1, category_id=7, iscrowd=0, segmentation=_rect_polygon(*SMALL_COIN)),
            dict(id=11, image_id=1, category_id=7, iscrowd=0,
                 segmentation=dict(size=[H, W], counts=large['counts'].decode('ascii'))),
            dict(id=12, image_id=1, category_id=7, iscrowd=1, segmentation=_uncompressed_rle(_box(*CROWD)))])
    (tmp_path / 'instances.json').write_text(json.dumps(data))
    (tmp_path / 'stuff').mkdir()
    stuff = np.full((H, W), 1, np.uint8)  # 1 = background
    stuff[:2] = 0                          # 0 = void
    stuff[_box(*UNINSTANCED_COIN)] = 3     # 3 = coin, but no instance there
    Image.fromarray(stuff).save(tmp_path / 'stuff' / 'a.png')
    Image.fromarray(np.ones((H, W), np.uint8)).save(tmp_path / 'stuff' / 'b.png')
    (tmp_path / 'stuff.json').write_text(json.dumps({'0': None, '1': 'background', '3': 'coin'}))
    return tmp_path


def _convert_coco(src, out):
    return coco_instances.convert_split(str(src / 'instances.json'), str(src / 'images'), str(out), 'train',
                                        stuff_dir=str(src / 'stuff'), stuff_table=str(src / 'stuff.json'))


def test_coco_instances_read_back_to_the_drawn_shapes(tmp_path):
    src, out = _coco_fixture(tmp_path / 'src'), tmp_path / 'out'
    result = _convert_coco(src, out)
    assert result['stats']['images'] == 2 and result['stats']['hidden'] == 0
    small, large, crowd = _box(*SMALL_COIN), _box(*LARGE_COIN), _box(*CROWD)
    dataset, (first, second) = _panoptic_readback(out, 'train')
    assert dataset.metainfo['thing_classes'] == ('coin', ) and dataset.metainfo['stuff_classes'] == ('background', )
    # the smaller coin is on top; the larger keeps what it does not cover; the crowd is not an instance
    masks = first['gt_masks'].masks.astype(bool)
    assert len(masks) == 2 and first['gt_bboxes_labels'].tolist() == [COIN, COIN]
    assert {m.tobytes() for m in masks} == {small.tobytes(), (large & ~small).tobytes()}
    want = np.full((H, W), BACKGROUND)
    want[:2] = VOID
    want[_box(*UNINSTANCED_COIN)] = VOID
    want[small | large | crowd] = COIN  # crowd pixels keep their class (mmdet's convention)
    assert np.array_equal(first['gt_seg_map'], want)
    assert np.array_equal(second['gt_seg_map'], np.full((H, W), BACKGROUND)) and len(second['gt_masks']) == 0
    # instances file: visible masks, the crowd flagged
    coco = COCO(str(out / 'annotations' / 'instances_train.json'))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert sorted((a['iscrowd'], int(coco.annToMask(a).sum())) for a in anns) == sorted(
        [(0, int(small.sum())), (0, int((large & ~small).sum())), (1, int(crowd.sum()))])
    crowd_ann = next(a for a in anns if a['iscrowd'])
    assert np.array_equal(coco.annToMask(crowd_ann).astype(bool), crowd)
    # semantic PNGs: the same map, read by mmseg
    semantic = _semantic_readback(out, 'train')
    assert np.array_equal(semantic['a.jpg'], want) and (semantic['b.jpg'] == BACKGROUND).all()


def test_coco_instances_overlap_rule_smaller_on_top_whatever_the_order():
    small, large = _box(*SMALL_COIN), _box(*LARGE_COIN)
    for masks in ([large, small], [small, large]):
        pan, segments, hidden = coco_instances.panoptic_from_instances(masks, [7, 7], [False, False])
        assert hidden == 0 and len(segments) == 2
        assert len(np.unique(pan[small])) == 1  # the small coin is whole
        assert sorted(int((pan == s['id']).sum()) for s in segments) == sorted([small.sum(), (large & ~small).sum()])
    # equal areas: the later annotation is on top
    first, second = _box((0, 10), (0, 10)), _box((5, 15), (5, 15))
    pan, segments, _ = coco_instances.panoptic_from_instances([first, second], [7, 7], [False, False])
    assert (pan[second] == segments[1]['id']).all() and (pan[first & ~second] == segments[0]['id']).all()
    # a coin entirely under a smaller one is dropped and counted
    pan, segments, hidden = coco_instances.panoptic_from_instances([large, small, small], [7, 7, 7], [False] * 3)
    assert hidden == 1 and len(segments) == 2


def test_coco_instances_perfect_prediction_scores_100(tmp_path):
    """PQ, mask AP and mIoU of the converted files against the fixture's own answer: all 100."""
    from mmdet.evaluation import CocoMetric
    from mmdet.structures.mask import BitmapMasks  # noqa: F401
    from m2f_mm.evaluation.metrics import M2FCocoPanopticMetric, M2FSemSegMetric
    src, out = _coco_fixture(tmp_path / 'src'), tmp_path / 'out'
    _convert_coco(src, out)
    dataset, _ = _panoptic_readback(out, 'train')
    small, large, crowd = _box(*SMALL_COIN), _box(*LARGE_COIN), _box(*CROWD)
    void_label = 2  # num_classes: VOID in label space
    pan_a = np.full((H, W), BACKGROUND)
    pan_a[:2] = void_label
    pan_a[_box(*UNINSTANCED_COIN)] = void_label
    pan_a[crowd] = void_label  # a crowd region needs no prediction
    pan_a[large] = COIN + 1 * 1000
    pan_a[small] = COIN + 2 * 1000
    sem_a = np.where(pan_a == void_label, VOID, pan_a % 1000)
    sem_a[crowd] = COIN
    inst_masks = np.stack([small, large & ~small])
    samples = [
        dict(img_id=1, img_path=str(out / 'train' / 'a.jpg'), ori_shape=(H, W),
             pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan_a)[None]),
             pred_sem_seg=dict(sem_seg=torch.from_numpy(sem_a)[None]), gt_sem_seg=dict(sem_seg=torch.from_numpy(sem_a)[None]),
             pred_instances=dict(masks=torch.from_numpy(inst_masks), labels=torch.tensor([0, 0]),
                                 scores=torch.tensor([0.9, 0.8]),
                                 bboxes=torch.tensor([[4., 4., 24., 20.], [16., 10., 40., 30.]]))),
        dict(img_id=2, img_path=str(out / 'train' / 'b.jpg'), ori_shape=(H, W),
             pred_panoptic_seg=dict(sem_seg=torch.full((1, H, W), BACKGROUND)),
             pred_sem_seg=dict(sem_seg=torch.full((1, H, W), BACKGROUND)),
             gt_sem_seg=dict(sem_seg=torch.full((1, H, W), BACKGROUND)),
             pred_instances=dict(masks=torch.zeros((0, H, W), dtype=torch.bool), labels=torch.zeros(0, dtype=torch.long),
                                 scores=torch.zeros(0), bboxes=torch.zeros((0, 4))))]
    ann = out / 'annotations'
    scores = {}
    for metric in (M2FCocoPanopticMetric(ann_file=str(ann / 'panoptic_train.json'), seg_prefix=str(ann / 'panoptic_train')),
                   CocoMetric(ann_file=str(ann / 'instances_train.json'), metric=['segm']),
                   M2FSemSegMetric(prefix='sem_seg')):
        metric.dataset_meta = dataset.metainfo
        metric.process({}, samples)
        scores.update(metric.evaluate(2))
    assert scores['coco_panoptic/PQ'] == pytest.approx(100) and scores['coco/segm_mAP'] == pytest.approx(1.0)
    assert scores['sem_seg/mIoU'] == pytest.approx(100)


@pytest.mark.parametrize('change, message', [
    (lambda d, s: d['annotations'][0].update(category_id=99), r'annotation 10 \(image 1\): category_id 99 is not'),
    (lambda d, s: d['images'][0].update(height=40), r'a.jpg is 48x64 \(HxW\) on disk but 40x64 in "images"'),
    (lambda d, s: d['annotations'][0].update(segmentation=[[1, 2, 3, 4]]), r'annotation 10: a polygon must be'),
    (lambda d, s: s.update({'1': 'background'}) or s.pop('3'), r'a.png has values \[3\] that the stuff class table'),
])
def test_coco_instances_bad_input_gives_one_line(tmp_path, change, message):
    src = _coco_fixture(tmp_path / 'src')
    data, stuff = json.loads((src / 'instances.json').read_text()), json.loads((src / 'stuff.json').read_text())
    change(data, stuff)
    (src / 'instances.json').write_text(json.dumps(data))
    (src / 'stuff.json').write_text(json.dumps(stuff))
    with pytest.raises(ConversionError, match=message) as err:
        _convert_coco(src, tmp_path / 'out')
    assert '\n' not in str(err.value)


def test_coco_instances_stuff_png_of_another_size_is_refused(tmp_path):
    src = _coco_fixture(tmp_path / 'src')
    Image.fromarray(np.ones((H, W - 1), np.uint8)).save(src / 'stuff' / 'b.png')
    with pytest.raises(ConversionError, match=r'b.png is 48x63 \(HxW\) but its image .*b.jpg is 48x64'):
        _convert_coco(src, tmp_path / 'out')


# -- instance-id PNGs + class table / class PNGs -> panoptic ----------------------------------------------------

LEFT, RIGHT, GROUP = ((5, 21), (5, 20)), ((5, 21), (20, 35)), ((25, 36), (40, 60))  # LEFT and RIGHT touch
VOID_ROWS = ((40, 48), (0, W))
NO_INSTANCE = ((25, 36), (2, 12))  # instance id 0; the class PNG says coin there


def _instance_fixture(tmp_path, with_class_pngs=False):
    """Image a.png: background (id 1, shared), two touching coins (ids 300, 301: a 16-bit PNG), a crowd of
    coins (id 7), VOID (id 0) rows at the bottom and a patch. Image b.png: background (1) and one coin (2),
    an 8-bit PNG."""
    _image(tmp_path / 'images' / 'a.png', 3)
    _image(tmp_path / 'images' / 'b.png', 4)
    ids = np.ones((H, W), np.uint16)
    for box, value in ((LEFT, 300), (RIGHT, 301), (GROUP, 7), (VOID_ROWS, 0), (NO_INSTANCE, 0)):
        ids[_box(*box)] = value
    (tmp_path / 'pngs').mkdir()
    Image.fromarray(ids).save(tmp_path / 'pngs' / 'a.png')
    ids_b = np.ones((H, W), np.uint8)
    ids_b[_box(*LEFT)] = 2
    Image.fromarray(ids_b).save(tmp_path / 'pngs' / 'b.png')
    table = dict(categories=[dict(id=2, name='background', isthing=0), dict(id=1, name='coin', isthing=1)],
                 instances={'*': {'1': 2}, 'a': {'300': 1, '301': 1, '7': 1}, 'b': {'2': 1}}, crowd={'a': [7]})
    if with_class_pngs:
        del table['instances']
        (tmp_path / 'classes').mkdir()
        for stem, coins in (('a', (LEFT, RIGHT, GROUP, NO_INSTANCE)), ('b', (LEFT, ))):
            classes = np.full((H, W), 2, np.uint8)
            for box in coins:
                classes[_box(*box)] = 1
            if stem == 'a':
                classes[_box(*VOID_ROWS)] = 0
            Image.fromarray(classes).save(tmp_path / 'classes' / f'{stem}.png')
    (tmp_path / 'table.json').write_text(json.dumps(table))
    return tmp_path


def _convert_instances(src, out, class_pngs=False):
    return instance_pngs.convert_split(str(src / 'pngs'), str(src / 'images'), str(src / 'table.json'), str(out),
                                       'val', class_png_dir=str(src / 'classes') if class_pngs else None)


@pytest.mark.parametrize('class_pngs', [False, True], ids=['class-table', 'class-pngs'])
def test_instance_pngs_read_back_to_the_drawn_shapes(tmp_path, class_pngs):
    src, out = _instance_fixture(tmp_path / 'src', class_pngs), tmp_path / 'out'
    _convert_instances(src, out, class_pngs)
    dataset, (first, second) = _panoptic_readback(out, 'val')
    assert dataset.metainfo['classes'] == ('coin', 'background')  # things first
    left, right, group = _box(*LEFT), _box(*RIGHT), _box(*GROUP)
    assert {m.tobytes() for m in first['gt_masks'].masks.astype(bool)} == {left.tobytes(), right.tobytes()}
    assert first['gt_bboxes_labels'].tolist() == [COIN, COIN]
    want = np.full((H, W), BACKGROUND)
    want[left | right | group] = COIN
    want[_box(*VOID_ROWS) | _box(*NO_INSTANCE)] = VOID  # id 0; with class PNGs: a coin without an instance
    assert np.array_equal(first['gt_seg_map'], want)
    assert [m.astype(bool).tobytes() for m in second['gt_masks'].masks] == [left.tobytes()]
    coco = COCO(str(out / 'annotations' / 'instances_val.json'))
    crowd = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=['a'])) if a['iscrowd']]
    assert len(crowd) == 1 and np.array_equal(coco.annToMask(crowd[0]).astype(bool), group)
    semantic = _semantic_readback(out, 'val')
    assert np.array_equal(semantic['a.png'], want)


@pytest.mark.parametrize('change, message', [
    (lambda t, a, c: t['instances']['a'].pop('301'), r'a.png: instance ids \[301\] have no class in'),
    (lambda t, a, c: t['instances']['a'].update({'999': 1}), r"instances\['a'\] lists ids \[999\] that .*a.png"),
    (lambda t, a, c: t['instances']['a'].update({'300': 5}), r"instances\['a'\]\['300'\] = 5 is not a category id"),
])
def test_instance_pngs_table_errors_are_one_line(tmp_path, change, message):
    src = _instance_fixture(tmp_path / 'src')
    table = json.loads((src / 'table.json').read_text())
    change(table, None, None)
    (src / 'table.json').write_text(json.dumps(table))
    with pytest.raises(ConversionError, match=message) as err:
        _convert_instances(src, tmp_path / 'out')
    assert '\n' not in str(err.value)


def test_instance_pngs_instance_over_two_classes_and_size_mismatch_are_refused(tmp_path):
    src = _instance_fixture(tmp_path / 'src', with_class_pngs=True)
    classes = np.asarray(Image.open(src / 'classes' / 'a.png')).copy()
    classes[5:21, 5:10] = 3  # part of coin 300 becomes an unknown class
    Image.fromarray(classes).save(src / 'classes' / 'a.png')
    with pytest.raises(ConversionError, match=r'class values \[3\] are not category ids'):
        _convert_instances(src, tmp_path / 'out', class_pngs=True)
    table = json.loads((src / 'table.json').read_text())
    table['categories'].append(dict(id=3, name='token', isthing=1))
    (src / 'table.json').write_text(json.dumps(table))
    with pytest.raises(ConversionError, match=r'a.png: instance id 300 covers pixels of classes \[1, 3\]'):
        _convert_instances(src, tmp_path / 'out2', class_pngs=True)
    classes[classes == 3] = 1
    Image.fromarray(classes).save(src / 'classes' / 'a.png')
    Image.fromarray(np.ones((H + 2, W), np.uint8)).save(src / 'pngs' / 'b.png')
    with pytest.raises(ConversionError, match=r'b.png is 50x64 \(HxW\) but its image .*b.png is 48x64'):
        _convert_instances(src, tmp_path / 'out3', class_pngs=True)


# -- semantic label PNGs -> mmseg labels + classes.json ---------------------------------------------------------

ROAD, CAR, TRUCK = ((0, 24), (0, W)), ((30, 40), (5, 25)), ((30, 45), (40, 60))


def _semantic_fixture(tmp_path):
    """Label values: 7 road (top half), 26 car, 27 truck (both 'vehicle'), 0 unlabeled elsewhere; image b's
    label PNG is a palette PNG."""
    for name, seed in (('a.jpg', 5), ('b.jpg', 6)):
        _image(tmp_path / 'images' / name, seed)
    labels = np.zeros((H, W), np.uint8)
    for box, value in ((ROAD, 7), (CAR, 26), (TRUCK, 27)):
        labels[_box(*box)] = value
    (tmp_path / 'labels').mkdir()
    Image.fromarray(labels).save(tmp_path / 'labels' / 'a.png')
    palette_png = Image.fromarray(np.where(labels == 27, 26, labels).astype(np.uint8), mode='L').convert('P')
    palette_png.save(tmp_path / 'labels' / 'b.png')
    table = dict(classes=[dict(name='road', value=7, color=[128, 64, 128]), dict(name='vehicle', values=[26, 27])],
                 ignore=[0, 255])
    (tmp_path / 'table.json').write_text(json.dumps(table))
    return tmp_path


def test_semantic_pngs_read_back_through_mmseg(tmp_path):
    src, out = _semantic_fixture(tmp_path / 'src'), tmp_path / 'out'
    semantic_pngs.convert_split(str(src / 'labels'), str(src / 'images'), str(src / 'table.json'), str(out), 'train')
    meta = json.loads((out / 'classes.json').read_text())
    assert meta['classes'] == ['road', 'vehicle'] and meta['palette'][0] == [128, 64, 128]
    assert meta['img_suffix'] == '.jpg' and meta['ignore_index'] == 255
    want = np.full((H, W), VOID)
    want[_box(*ROAD)] = 0
    want[_box(*CAR) | _box(*TRUCK)] = 1
    semantic = _semantic_readback(out, 'train')
    assert np.array_equal(semantic['a.jpg'], want) and np.array_equal(semantic['b.jpg'], want)
    assert not (out / 'annotations' / 'panoptic_train.json').exists()


def test_semantic_pngs_list_table_and_errors(tmp_path):
    src = _semantic_fixture(tmp_path / 'src')
    (src / 'list.json').write_text(json.dumps([f'class{k}' for k in range(28)]))
    semantic_pngs.convert_split(str(src / 'labels'), str(src / 'images'), str(src / 'list.json'), str(tmp_path / 'o1'),
                                'train')
    assert (np.asarray(Image.open(tmp_path / 'o1' / 'annotations' / 'semantic_train' / 'a.png'))[_box(*TRUCK)] == 27).all()
    with pytest.raises(ConversionError, match=r'a.png has values \[0\] that the class table neither lists nor ignores'):
        table = dict(classes=[dict(name='road', value=7), dict(name='vehicle', values=[26, 27])])
        (src / 'noignore.json').write_text(json.dumps(table))
        semantic_pngs.convert_split(str(src / 'labels'), str(src / 'images'), str(src / 'noignore.json'),
                                    str(tmp_path / 'o2'), 'train')
    Image.fromarray(np.zeros((H, W + 1), np.uint8)).save(src / 'labels' / 'a.png')
    with pytest.raises(ConversionError, match=r'a.png is 48x65 \(HxW\) but its image'):
        semantic_pngs.convert_split(str(src / 'labels'), str(src / 'images'), str(src / 'table.json'),
                                    str(tmp_path / 'o3'), 'train')


def test_classes_json_of_another_table_is_refused(tmp_path):
    src = _semantic_fixture(tmp_path / 'src')
    out = tmp_path / 'out'
    semantic_pngs.convert_split(str(src / 'labels'), str(src / 'images'), str(src / 'table.json'), str(out), 'train')
    (src / 'other.json').write_text(json.dumps(dict(classes=[dict(name='street', value=7),
                                                             dict(name='vehicle', values=[26, 27])], ignore=[0])))
    with pytest.raises(ConversionError, match=r'classes.json lists other classes'):
        semantic_pngs.convert_split(str(src / 'labels'), str(src / 'images'), str(src / 'other.json'), str(out), 'val')


@pytest.mark.slow
def test_round_trip_of_the_synthetic_set_gives_its_panoptic_annotation_back(tools, tmp_path):
    """The bundled set's instances JSON + semantic PNGs (things and stuff) converted back to panoptic: the
    same segments (mask, class, crowd flag) as its own panoptic files, image by image; its classes.json-like
    meta.json works as the semantic class table."""
    tiny_data = tools.make_data(str(tmp_path / 'data'), size=192)  # the default size: crowd segments among them
    from m2f_mm.structures.panoptic_format import rgb2id
    with open(osp.join(tiny_data, 'meta.json')) as f:
        meta = json.load(f)
    table = {str(k): name for k, name in enumerate(meta['classes'])}
    table['255'] = None
    (tmp_path / 'stuff.json').write_text(json.dumps(table))
    ann = osp.join(tiny_data, 'annotations')
    result = coco_instances.convert_split(osp.join(ann, 'instances_train.json'), osp.join(tiny_data, 'train'),
                                          str(tmp_path / 'out'), 'train', stuff_dir=osp.join(ann, 'semantic_train'),
                                          stuff_table=str(tmp_path / 'stuff.json'))
    assert result['stats']['hidden'] == 0

    def segments(pan_json, png_dir):
        data = json.loads(open(pan_json).read())
        names = {c['id']: c['name'] for c in data['categories']}
        out = {}
        for entry in data['annotations']:
            pan = rgb2id(np.asarray(Image.open(osp.join(png_dir, entry['file_name'])).convert('RGB')))
            out[entry['image_id']] = {((pan == s['id']).tobytes(), names[s['category_id']], s['iscrowd'])
                                      for s in entry['segments_info']}
        return out

    original = segments(osp.join(ann, 'panoptic_train.json'), osp.join(ann, 'panoptic_train'))
    converted = segments(str(tmp_path / 'out' / 'annotations' / 'panoptic_train.json'),
                         str(tmp_path / 'out' / 'annotations' / 'panoptic_train'))
    assert converted == original and sum(len(v) for v in original.values()) > 20
    assert any(crowd for segs in original.values() for _, _, crowd in segs)
    semantic_pngs.convert_split(osp.join(ann, 'semantic_train'), osp.join(tiny_data, 'train'),
                                osp.join(tiny_data, 'meta.json'), str(tmp_path / 'sem'), 'train')
    for name in sorted(original):
        stem = f'{name:012d}.png'
        assert np.array_equal(np.asarray(Image.open(tmp_path / 'sem' / 'annotations' / 'semantic_train' / stem)),
                              np.asarray(Image.open(osp.join(ann, 'semantic_train', stem))))


@pytest.mark.parametrize('table, message', [
    (dict(categories=[dict(id=1, name='coin'), dict(id=1, name='background', isthing=0)]),
     r'two categories have id 1; each id must be unique'),
    (dict(categories=[dict(id=1, name='coin'), dict(id=2, name='coin', isthing=0)]),
     r"two categories have name 'coin'"),
    (dict(categories=[dict(name='coin')]), r'category #0 .* each needs "id" and "name"'),
])
def test_class_table_with_clashing_categories_is_refused(tmp_path, table, message):
    (tmp_path / 'table.json').write_text(json.dumps(table))
    with pytest.raises(ConversionError, match=message) as err:
        instance_pngs.ClassTable(str(tmp_path / 'table.json'))
    assert '\n' not in str(err.value)


def test_semantic_value_given_to_two_classes_is_refused(tmp_path):
    (tmp_path / 't.json').write_text(json.dumps(dict(classes=[dict(name='road', value=7),
                                                              dict(name='car', values=[7, 8])])))
    with pytest.raises(ConversionError, match=r"value 7 is given to both 'road' and 'car'"):
        semantic_pngs.read_semantic_table(str(tmp_path / 't.json'))
