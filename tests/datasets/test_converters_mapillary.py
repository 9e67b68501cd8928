"""Mapillary Vistas converter: a hand-made miniature of the v1.2 release (its 66 labels, its file layout)
read back through the Mapillary configs' own datasets."""
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from m2f_mm.datasets.convert import ConversionError
from m2f_mm.datasets.convert import mapillary

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H, W = 32, 48
# config_v1.2.json's "instances": true labels (37 of the 65 evaluated ones)
THINGS = ('Bird', 'Ground Animal', 'Crosswalk - Plain', 'Person', 'Bicyclist', 'Motorcyclist', 'Other Rider',
          'Lane Marking - Crosswalk', 'Banner', 'Bench', 'Bike Rack', 'Billboard', 'Catch Basin', 'CCTV Camera',
          'Fire Hydrant', 'Junction Box', 'Mailbox', 'Manhole', 'Phone Booth', 'Street Light', 'Pole',
          'Traffic Sign Frame', 'Utility Pole', 'Traffic Light', 'Traffic Sign (Back)', 'Traffic Sign (Front)',
          'Trash Can', 'Bicycle', 'Boat', 'Bus', 'Car', 'Caravan', 'Motorcycle', 'Other Vehicle', 'Trailer', 'Truck',
          'Wheeled Slow')
ROAD, SKY, PERSON, CAR, UNLABELED = 13, 27, 19, 55, 65  # label indices of the release
PANOPTIC = 'configs/m2f_r50_8xb2-300k_mapillary-panoptic-1024x1024.py'
SEMANTIC = 'configs/m2f_r50_8xb2-300k_mapillary-1024x1024.py'


def _labels():
    """The 66 labels of config_v1.2.json (readable names and colours as mmseg's MapillaryDataset_v1)."""
    from mmseg.datasets import MapillaryDataset_v1
    meta = MapillaryDataset_v1.METAINFO
    return [dict(name=f'label--{k}', readable=name, color=list(color), instances=name in THINGS,
                 evaluate=name != 'Unlabeled') for k, (name, color) in enumerate(zip(meta['classes'], meta['palette']))]


def _box(rows, cols):
    mask = np.zeros((H, W), bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


# (label, instance index, box): sky on top, road below, two touching cars (instance 0 and 1), a person, an
# unlabeled patch
SCENE = [(SKY, 0, ((0, 14), (0, W))), (ROAD, 0, ((14, H), (0, W))), (CAR, 0, ((16, 26), (4, 16))),
         (CAR, 1, ((16, 26), (16, 30))), (PERSON, 0, ((10, 28), (36, 42))), (UNLABELED, 0, ((28, H), (0, 8)))]


def _write_release(root, unlabeled_segment=False, swap_names=False):
    """ROOT/config_v1.2.json and training/ + validation/ with images, labels, instances and panoptic."""
    labels = _labels()
    root.mkdir(parents=True)
    (root / 'config_v1.2.json').write_text(json.dumps(dict(labels=labels, version='1.2')))
    cats = [dict(id=k + 1, name=lab['readable'], supercategory=lab['name'], isthing=int(lab['instances']),
                 color=lab['color']) for k, lab in enumerate(labels) if lab['evaluate']]
    if swap_names:
        cats[0]['name'], cats[1]['name'] = cats[1]['name'], cats[0]['name']
        cats[0]['supercategory'], cats[1]['supercategory'] = cats[1]['supercategory'], cats[0]['supercategory']
    for folder, stems in (('training', ['t1', 't2']), ('validation', ['v1'])):
        base = root / folder
        for sub in ('images', 'v1.2/labels', 'v1.2/instances', 'v1.2/panoptic'):
            (base / sub).mkdir(parents=True)
        images, anns = [], []
        for n, stem in enumerate(stems):
            Image.fromarray(np.random.default_rng(n).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
                base / 'images' / f'{stem}.jpg')
            label = np.zeros((H, W), np.uint8)
            instance = np.zeros((H, W), np.uint16)
            pan = np.zeros((H, W), np.int64)
            segments = []
            for k, (lab, inst, box) in enumerate(SCENE):
                mask = _box(*box)
                label[mask], instance[mask] = lab, lab * 256 + inst
                seg_id = 5000 + 17 * k  # any ids
                pan[mask] = seg_id if lab != UNLABELED or unlabeled_segment else 0
            for k, (lab, inst, box) in enumerate(SCENE):
                seg_id = 5000 + 17 * k
                if (pan == seg_id).any():
                    segments.append(dict(id=seg_id, category_id=lab + 1, iscrowd=0, area=int((pan == seg_id).sum())))
            png = Image.fromarray(label, mode='L').convert('P')
            png.putpalette([c for lab in labels for c in lab['color']])
            png.save(base / 'v1.2' / 'labels' / f'{stem}.png')
            Image.fromarray(instance).save(base / 'v1.2' / 'instances' / f'{stem}.png')
            rgb = np.stack([pan % 256, pan // 256 % 256, pan // 65536], -1).astype(np.uint8)
            Image.fromarray(rgb).save(base / 'v1.2' / 'panoptic' / f'{stem}.png')
            images.append(dict(id=stem, file_name=f'{stem}.jpg', height=H, width=W))
            anns.append(dict(image_id=stem, file_name=f'{stem}.png', segments_info=segments))
        (base / 'v1.2' / 'panoptic' / 'panoptic_2018.json').write_text(json.dumps(
            dict(images=images, annotations=anns, categories=cats)))
    return root


def _config_dataset(config, split, out, pipeline):
    cfg = Config.fromfile(osp.join(REPO, config))
    dataset_cfg = cfg[f'{split}_dataloader'].dataset
    dataset_cfg.update(data_root=str(out) + '/', pipeline=pipeline)
    init_default_scope(cfg.default_scope)
    registry = __import__(f'{cfg.default_scope}.registry', fromlist=['DATASETS']).DATASETS
    dataset = registry.build(dataset_cfg)
    init_default_scope('mmdet')
    return cfg, dataset


def _expected_semantic():
    sem = np.zeros((H, W), np.int64)
    for lab, _, box in SCENE:
        sem[_box(*box)] = 255 if lab == UNLABELED else lab
    return sem


@pytest.mark.slow
@pytest.mark.parametrize('source', ['panoptic', 'instances'])
def test_mapillary_reads_back_through_the_mapillary_configs(tmp_path, source):
    root = _write_release(tmp_path / 'release', unlabeled_segment=True)
    out = tmp_path / 'out'
    for split in ('train', 'val'):
        mapillary.convert_split(str(root), str(out), split, source=source, workers=2 if split == 'train' else 0)
    assert osp.islink(out / 'train' / 't1.jpg')  # images linked, not copied
    cfg, dataset = _config_dataset(PANOPTIC, 'train', out, [
        dict(type='LoadImageFromFile'), dict(type='M2FLoadPanopticAnnotations', with_bbox=True, with_mask=True,
                                             with_seg=True)])
    things = dataset.metainfo['thing_classes']
    assert len(things) == cfg.model.panoptic_head.num_things_classes == 37
    assert len(dataset.metainfo['stuff_classes']) == cfg.model.panoptic_head.num_stuff_classes == 28
    classes = dataset.metainfo['classes']  # things first
    label = {lab: classes.index(_labels()[lab]['readable']) for lab in (ROAD, SKY, PERSON, CAR)}
    assert label[CAR] < 37 and label[PERSON] < 37 and label[ROAD] >= 37 and label[SKY] >= 37
    results = [dataset[k] for k in range(len(dataset))]
    assert len(results) == 2
    want = np.full((H, W), 255)
    for lab, _, box in SCENE:
        want[_box(*box)] = 255 if lab == UNLABELED else label[lab]
    for result in results:
        assert np.array_equal(result['gt_seg_map'], want)
        masks = {(m.astype(bool).tobytes(), int(lab)) for m, lab in zip(result['gt_masks'].masks,
                                                                         result['gt_bboxes_labels'])}
        assert masks == {(_box(*box).tobytes(), label[lab]) for lab, _, box in SCENE if lab in (CAR, PERSON)}
    # the semantic configs' dataset (mmseg's MapillaryDataset_v1, 65 classes) reads the semantic PNGs
    _, semantic = _config_dataset(SEMANTIC, 'val', out, [dict(type='LoadImageFromFile'),
                                                          dict(type='LoadAnnotations')])
    assert len(semantic.metainfo['classes']) == 65 and len(semantic) == 1
    assert np.array_equal(semantic[0]['gt_seg_map'], _expected_semantic())


def test_mapillary_release_labels_work_with_the_semantic_config_too(tmp_path):
    """The release's own label PNGs (65 = Unlabeled) through the semantic config: 65 becomes 255."""
    root = _write_release(tmp_path / 'release')
    cfg = Config.fromfile(osp.join(REPO, SEMANTIC))
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.update(data_root=str(root) + '/', pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')],
                       data_prefix=dict(img_path='validation/images', seg_map_path='validation/v1.2/labels'))
    init_default_scope('mmseg')
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(dataset_cfg)
    init_default_scope('mmdet')
    assert np.array_equal(dataset[0]['gt_seg_map'], _expected_semantic())


def test_mapillary_mismatched_release_files_are_refused(tmp_path):
    root = _write_release(tmp_path / 'swapped', swap_names=True)
    with pytest.raises(ConversionError, match=r"panoptic_2018.json: category id 1 is 'Ground Animal' but label 0"):
        mapillary.convert_split(str(root), str(tmp_path / 'out'), 'val')
    root = _write_release(tmp_path / 'release')
    Image.fromarray(np.zeros((H, W + 4), np.uint8)).save(root / 'validation' / 'v1.2' / 'labels' / 'v1.png')
    with pytest.raises(ConversionError, match=r'v1.png is 32x52 \(HxW\) but its image .*v1.jpg is 32x48') as err:
        mapillary.convert_split(str(root), str(tmp_path / 'out'), 'val')
    assert '\n' not in str(err.value)
    with pytest.raises(ConversionError, match=r'cannot read Mapillary config .*config_v2.0.json'):
        mapillary.convert_split(str(root), str(tmp_path / 'out'), 'val', version='v2.0')


@pytest.mark.slow
def test_mapillary_configs_pipelines_run_on_the_converted_data(tmp_path):
    """The configs' own train and test pipelines (1024 crop; test long side 2048) on the converter's output."""
    root = _write_release(tmp_path / 'release')
    out = tmp_path / 'out'
    for split in ('train', 'val'):
        mapillary.convert_split(str(root), str(out), split)
    for config, key in ((PANOPTIC, 'gt_instances'), (SEMANTIC, 'gt_sem_seg')):
        cfg = Config.fromfile(osp.join(REPO, config))
        _, train = _config_dataset(config, 'train', out, cfg.train_dataloader.dataset.pipeline)
        _, val = _config_dataset(config, 'val', out, cfg.val_dataloader.dataset.pipeline)
        init_default_scope(cfg.default_scope)
        packed = train[0]
        assert tuple(packed['inputs'].shape[-2:]) == (1024, 1024)
        tested = val[0]
        init_default_scope('mmdet')
        assert max(tested['inputs'].shape[-2:]) == 2048  # long side 2048 (short side 2048, capped)
        assert key in packed['data_samples']
