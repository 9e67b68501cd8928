"""ADE20K / Cityscapes panoptic and instance data: converters, readers and 2 training iterations.

The tests write a few small images in the real on-disk layouts: ADE20K's semantic + instance PNGs
(converted by tools/dataset_converters/ade20k.py), cityscapesscripts' panoptic JSON + PNGs and
Cityscapes' 16-bit ``*_instanceIds.png`` (converted by tools/dataset_converters/cityscapes.py).
"""
import collections
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from m2f_mm.datasets.coco_format import M2FCityscapesPanopticDataset, M2FInstanceDataset, M2FPanopticDataset
from m2f_mm.structures.panoptic_format import id2rgb, load_panoptic_png

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H, W = 64, 96


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', 'dataset_converters', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image(path: str, seed: int) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


# ------------------------------------------------------------------------------------------ ADE20K
# instance class -> semantic class (1-based): 1 -> 8 bed, 2 -> 9 windowpane, as ADE20K's table; the
# other 98 map to classes 10..107 here, so the files have ADE20K's 100 thing + 50 stuff classes
ADE_MAPPING = 'Instacne100\tSceneParse150\tFullADE20K\n' + ''.join(f'{i}\t\t{i + 7}\t\t0\n' for i in range(1, 101))


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    """ADEChallengeData2016 with 2 images per split: wall (1) | floor (4) with a bed and a window."""
    root = str(tmp_path_factory.mktemp('ade') / 'ADEChallengeData2016')
    for split, folder in (('train', 'training'), ('val', 'validation')):
        for k in range(2):
            stem = f'ADE_{split}_{k + 1:08d}'
            _image(osp.join(root, 'images', folder, stem + '.jpg'), k)
            sem = np.zeros((H, W), np.uint8)
            sem[:, : W // 2], sem[:, W // 2:] = 1, 4  # wall | floor
            sem[:4] = 0                               # unlabeled strip
            sem[20:40, 10:40] = 8                     # bed
            ins = np.zeros((H, W, 3), np.uint8)
            ins[20:40, 10:40] = (1, 1, 0)             # instance class 1 (bed), instance 1
            ins[8:16, 60:80] = (2, 2, 0)              # instance class 2 (windowpane), instance 2
            for name, arr in (('annotations', sem), ('annotations_instance', ins)):
                os.makedirs(osp.join(root, name, folder), exist_ok=True)
                Image.fromarray(arr).save(osp.join(root, name, folder, stem + '.png'))
    mapping = osp.join(root, 'catid_mapping.txt')
    with open(mapping, 'w') as f:
        f.write(ADE_MAPPING)
    assert _tool('ade20k').main([root, '--catid-mapping', mapping]) == 0
    return root


def test_ade20k_converter_writes_the_coco_panoptic_and_instance_files(ade_root):
    with open(osp.join(ade_root, 'ade20k_panoptic_train.json')) as f:
        pan = json.load(f)
    assert len(pan['categories']) == 150 and pan['categories'][0]['name'] == 'wall'
    assert [c['id'] for c in pan['categories'] if c['isthing']] == list(range(7, 107))  # 7 bed, 8 windowpane
    ann = pan['annotations'][0]
    assert ann['image_id'] == 'ADE_train_00000001' and ann['file_name'] == 'ADE_train_00000001.png'
    segs = {s['id']: s for s in ann['segments_info']}
    # stuff: semantic class c -> id c; things: 1000 * (category + 1) + k
    assert {i: s['category_id'] for i, s in segs.items()} == {1: 0, 4: 3, 8001: 7, 9002: 8}
    ids = load_panoptic_png(osp.join(ade_root, 'ade20k_panoptic_train', ann['file_name']))
    assert ids[0, 0] == 0 and ids[30, 20] == 8001 and ids[10, 70] == 9002 and ids[50, 5] == 1 and ids[50, 90] == 4
    assert segs[1]['area'] == int((ids == 1).sum()) and segs[8001]['bbox'] == [10, 20, 30, 20]
    with open(osp.join(ade_root, 'ade20k_instance_val.json')) as f:
        ins = json.load(f)
    assert [c['name'] for c in ins['categories']][:2] == ['bed', 'windowpane'] and len(ins['categories']) == 100
    assert len(ins['annotations']) == 4 and ins['annotations'][0]['segmentation']['size'] == [H, W]


def test_ade20k_panoptic_dataset_puts_things_first(ade_root):
    ds = M2FPanopticDataset(ann_file='ade20k_panoptic_train.json', data_root=ade_root,
                            data_prefix=dict(img='images/training/', seg='ade20k_panoptic_train/'), pipeline=[])
    meta = ds.metainfo
    assert meta['thing_classes'][:2] == ('bed', 'windowpane') and len(meta['thing_classes']) == 100
    assert meta['stuff_classes'][:4] == ('wall', 'building', 'sky', 'floor') and len(meta['stuff_classes']) == 50
    assert meta['classes'] == meta['thing_classes'] + meta['stuff_classes']
    info = ds[0]
    assert info['img_path'].endswith('images/training/ADE_train_00000001.jpg')
    assert info['seg_map_path'].endswith('ade20k_panoptic_train/ADE_train_00000001.png')
    labels = {s['id']: s['category'] for s in info['segments_info']}
    assert labels == {8001: 0, 9002: 1, 1: 100, 4: 103}  # wall, floor: the 1st and 4th stuff classes
    assert [i['bbox_label'] for i in info['instances']] == [0, 1]


def test_ade20k_panoptic_loader_builds_the_targets(ade_root):
    from m2f_mm.datasets.panoptic import M2FLoadPanopticAnnotations
    ds = M2FPanopticDataset(ann_file='ade20k_panoptic_val.json', data_root=ade_root,
                            data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/'), pipeline=[
                                dict(type='LoadImageFromFile'), M2FLoadPanopticAnnotations()])
    out = ds[1]
    assert out['gt_masks'].masks.shape == (2, H, W)
    assert out['gt_seg_map'][30, 20] == 0 and out['gt_seg_map'][50, 5] == 100 and out['gt_seg_map'][0, 0] == 255


def test_ade20k_instance_dataset_takes_the_file_classes(ade_root):
    ds = M2FInstanceDataset(ann_file='ade20k_instance_train.json', data_root=ade_root,
                            data_prefix=dict(img='images/training/'),
                            pipeline=[dict(type='LoadImageFromFile'),
                                      dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    assert ds.metainfo['classes'][:2] == ('bed', 'windowpane') and len(ds.metainfo['classes']) == 100
    out = ds[0]
    assert out['gt_bboxes_labels'].tolist() == [0, 1]
    assert out['gt_masks'].masks[0].sum() == 20 * 30 and out['gt_masks'].masks[0][30, 20] == 1


def test_unknown_class_names_are_refused(ade_root):
    with pytest.raises(ValueError, match=r"classes \['sofa-bed'\] of the config are not categories"):
        M2FPanopticDataset(ann_file='ade20k_panoptic_train.json', data_root=ade_root, pipeline=[],
                           data_prefix=dict(img='images/training/', seg='ade20k_panoptic_train/'),
                           metainfo=dict(classes=('bed', 'sofa-bed')))


def test_ade20k_converter_answers_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _tool('ade20k').main(['--help'])
    assert exit_info.value.code == 0 and '--catid-mapping' in capsys.readouterr().out


# -------------------------------------------------------------------------------------- Cityscapes
Label = collections.namedtuple('Label', 'name id hasInstances ignoreInEval')
# cityscapesscripts' evaluated classes (label id, has instances), in its order; 'unlabeled' is ignored
CS_LABELS = [Label('unlabeled', 0, False, True)] + [
    Label(n, i, i >= 24, False) for n, i in (
        ('road', 7), ('sidewalk', 8), ('building', 11), ('wall', 12), ('fence', 13), ('pole', 17),
        ('traffic light', 19), ('traffic sign', 20), ('vegetation', 21), ('terrain', 22), ('sky', 23),
        ('person', 24), ('rider', 25), ('car', 26), ('truck', 27), ('bus', 28), ('train', 31),
        ('motorcycle', 32), ('bicycle', 33))]


def _cs_instance_ids() -> np.ndarray:
    """``*_instanceIds.png`` content: road (7) | sky (23), a car (26001), a person crowd region (24)."""
    ids = np.full((H, W), 7, np.int64)
    ids[:20] = 23
    ids[30:50, 20:60] = 26001
    ids[40:60, 70:90] = 24
    ids[60:] = 0  # unlabeled
    return ids


@pytest.fixture(scope='module')
def cs_root(tmp_path_factory):
    """data/cityscapes with 2 images per split: leftImg8bit, instanceIds and cityscapesscripts'
    panoptic files (createPanopticImgs layout: label-id categories, *_gtFine_panoptic.png)."""
    root = str(tmp_path_factory.mktemp('cityscapes'))
    cats = [dict(id=lab.id, name=lab.name, color=[0, 0, 0], supercategory='x', isthing=int(lab.hasInstances))
            for lab in CS_LABELS if not lab.ignoreInEval]
    for split in ('train', 'val'):
        images, anns = [], []
        pan_dir = osp.join(root, 'gtFine', f'cityscapes_panoptic_{split}')
        os.makedirs(pan_dir, exist_ok=True)
        for k in range(2):
            stem = f'aachen_{k:06d}_000019'
            _image(osp.join(root, 'leftImg8bit', split, 'aachen', f'{stem}_leftImg8bit.png'), k)
            ids = _cs_instance_ids()
            gt_dir = osp.join(root, 'gtFine', split, 'aachen')
            os.makedirs(gt_dir, exist_ok=True)
            Image.fromarray(ids.astype(np.uint16)).save(osp.join(gt_dir, f'{stem}_gtFine_instanceIds.png'))
            Image.fromarray(id2rgb(ids)).save(osp.join(pan_dir, f'{stem}_gtFine_panoptic.png'))
            segs = [dict(id=int(i), category_id=int(i // 1000 if i >= 1000 else i), area=int((ids == i).sum()),
                         bbox=[0, 0, 1, 1], iscrowd=int(i == 24)) for i in np.unique(ids) if i != 0]
            images.append(dict(id=stem, width=W, height=H, file_name=f'{stem}_leftImg8bit.png'))
            anns.append(dict(image_id=stem, file_name=f'{stem}_gtFine_panoptic.png', segments_info=segs))
        with open(osp.join(root, 'gtFine', f'cityscapes_panoptic_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=anns, categories=cats), f)
        _tool('cityscapes').convert_instances(root, split, CS_LABELS)
    return root


def test_cityscapes_panoptic_dataset(cs_root):
    prefix = dict(img='leftImg8bit/train/', seg='gtFine/cityscapes_panoptic_train/')
    ds = M2FCityscapesPanopticDataset(ann_file='gtFine/cityscapes_panoptic_train.json', data_root=cs_root, pipeline=[],
                                      data_prefix=prefix)
    meta = ds.metainfo
    assert meta['thing_classes'] == ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
    assert meta['classes'][8:] == ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                                   'traffic sign', 'vegetation', 'terrain', 'sky')
    info = ds[0]
    assert info['img_path'].endswith('leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png')
    assert info['seg_map_path'].endswith('gtFine/cityscapes_panoptic_train/aachen_000000_000019_gtFine_panoptic.png')
    assert {s['id']: (s['category'], s['is_thing']) for s in info['segments_info']} == {
        7: (8, False), 23: (18, False), 24: (0, False), 26001: (2, True)}  # the crowd person is no instance
    assert [(i['bbox_label'], i['ignore_flag']) for i in info['instances']] == [(2, 0)]  # mmdet drops crowds


def test_cityscapes_instance_converter_and_mmdet_reader(cs_root):
    with open(osp.join(cs_root, 'annotations', 'instancesonly_filtered_gtFine_val.json')) as f:
        coco = json.load(f)
    assert [c['id'] for c in coco['categories']] == [24, 25, 26, 27, 28, 31, 32, 33]
    assert coco['images'][0]['file_name'] == 'aachen/aachen_000000_000019_leftImg8bit.png'
    assert [(a['category_id'], a['bbox'], a['area']) for a in coco['annotations']] == [(26, [20, 30, 40, 20], 800)] * 2
    from mmdet.datasets import CityscapesDataset
    ds = CityscapesDataset(ann_file='annotations/instancesonly_filtered_gtFine_val.json', data_root=cs_root,
                           data_prefix=dict(img='leftImg8bit/val/'), test_mode=True,
                           pipeline=[dict(type='LoadImageFromFile'),
                                     dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    out = ds[0]
    assert out['img'].shape == (H, W, 3) and out['gt_bboxes_labels'].tolist() == [2]
    assert out['gt_masks'].masks[0].sum() == 800


def test_cityscapes_converter_answers_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _tool('cityscapes').main(['--help'])
    assert exit_info.value.code == 0 and 'cityscapesscripts' in capsys.readouterr().out


# ------------------------------------------------------------------------ 2 training iterations each
def _tiny(cfg: Config, data_root: str) -> Config:
    """The config with m2f_tiny.py's model (its class counts kept), small images, 2 iterations, no workers, on
    ``data_root``: the one setting that moves every dataloader and evaluator (m2f_mm/config)."""
    from m2f_mm.config import resolve_config
    tiny = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models', 'm2f_tiny.py')).model
    head = cfg.model.panoptic_head
    tiny.panoptic_head.update(num_things_classes=head.num_things_classes, num_stuff_classes=head.num_stuff_classes,
                              num_queries=8)
    tiny.panoptic_head.transformer_decoder.num_layers = 3
    tiny.panoptic_head.criterion.num_points = 64
    tiny.panoptic_fusion_head = cfg.model.panoptic_fusion_head
    tiny.test_cfg = cfg.model.test_cfg
    tiny.data_preprocessor = cfg.model.data_preprocessor
    for aug in tiny.data_preprocessor.get('batch_augments') or []:
        aug.size = (64, 64)
    cfg.model = tiny
    cfg.data_root = data_root
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        for step in loader.dataset.pipeline:
            if step['type'] == 'RandomChoiceResize':
                step.update(scales=[64, 80], max_size=128)
            elif step['type'] == 'RandomCrop':
                step.crop_size = (64, 64)
    cfg.train_dataloader.pop('batch_sampler', None)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.pop('visualization', None)
    cfg.visualizer = dict(type='DetLocalVisualizer', vis_backends=[])
    resolve_config(cfg, 'train')
    for evaluator in cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]:
        for key in ('ann_file', 'seg_prefix'):
            if key in evaluator:  # the evaluators followed data_root
                assert evaluator[key].startswith(data_root), (key, evaluator[key])
    return cfg


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize('config, root', [
    ('m2f_r50_8xb2-160k_ade20k-panoptic-640x640.py', 'ade_root'),
    ('m2f_r50_8xb2-160k_ade20k-instance-640x640.py', 'ade_root'),
    ('m2f_r50_8xb2-90k_cityscapes-panoptic-512x1024.py', 'cs_root'),
    ('m2f_r50_8xb2-90k_cityscapes-instance-512x1024.py', 'cs_root'),
])
def test_dataset_config_trains_two_iterations_and_evaluates(config, root, request, tmp_path):
    from mmengine.runner import Runner
    data_root = request.getfixturevalue(root) + '/'
    cfg = _tiny(Config.fromfile(osp.join(REPO, 'configs', config)), data_root)
    cfg.work_dir = str(tmp_path)
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    logs = runner.message_hub.get_scalar('train/loss')
    assert len(logs.data[0]) == 2 and all(np.isfinite(logs.data[0]))
    metrics = runner.val_loop.run()
    key = 'coco_panoptic/PQ' if 'panoptic' in config else 'coco/segm_mAP'
    assert key in metrics and 0.0 <= metrics[key] <= 100.0
