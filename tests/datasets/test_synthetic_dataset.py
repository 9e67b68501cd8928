"""The bundled synthetic dataset: deterministic, self-consistent across formats, readable by real loaders."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from m2f_mm.datasets.synthetic import (CATEGORY_IDS, CLASS_INDEX, CLASSES, THING_IDS, generate_dataset,
                                       validate_args)
from m2f_mm.structures.panoptic_format import id2rgb, rgb2id


@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('synthetic') / 'data')
    generate_dataset(out, num_train=6, num_val=3, size=(96, 128), seed=7)
    return out


def _read(path):
    return np.array(Image.open(path))


def _split(out, split):
    with open(osp.join(out, 'annotations', f'panoptic_{split}.json')) as f:
        pan = json.load(f)
    with open(osp.join(out, 'annotations', f'instances_{split}.json')) as f:
        inst = json.load(f)
    return pan, inst


def test_same_seed_same_bytes_other_seed_different(tmp_path, dataset_dir):
    again = str(tmp_path / 'again')
    generate_dataset(again, num_train=6, num_val=3, size=(96, 128), seed=7)
    other = str(tmp_path / 'other')
    generate_dataset(other, num_train=6, num_val=3, size=(96, 128), seed=8)
    name = osp.join('annotations', 'panoptic_train.json')
    for rel in (name, osp.join('train', '000000000001.jpg')):
        assert open(osp.join(dataset_dir, rel), 'rb').read() == open(osp.join(again, rel), 'rb').read()
        assert open(osp.join(dataset_dir, rel), 'rb').read() != open(osp.join(other, rel), 'rb').read()


@pytest.mark.parametrize('split', ['train', 'val'])
def test_panoptic_png_agrees_with_json_instances_and_semantic(dataset_dir, split):
    pan, inst = _split(dataset_dir, split)
    assert {c['id'] for c in pan['categories']} == set(CATEGORY_IDS)
    assert {c['id'] for c in inst['categories']} == set(THING_IDS)
    inst_by_image = {}
    for ann in inst['annotations']:
        inst_by_image.setdefault(ann['image_id'], []).append(ann)
    for image, ann in zip(pan['images'], pan['annotations']):
        assert ann['image_id'] == image['id']
        ids = rgb2id(_read(osp.join(dataset_dir, 'annotations', f'panoptic_{split}', ann['file_name'])))
        assert ids.shape == (image['height'], image['width'])
        segments = {s['id']: s for s in ann['segments_info']}
        assert set(np.unique(ids)) - {0} == set(segments)   # every PNG id has a JSON entry and back
        semantic = _read(osp.join(dataset_dir, 'annotations', f'semantic_{split}', ann['file_name']))
        assert (semantic[ids == 0] == 255).all()
        for seg_id, seg in segments.items():
            mask = ids == seg_id
            ys, xs = np.nonzero(mask)
            assert seg['area'] == mask.sum()
            assert seg['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert (semantic[mask] == CLASS_INDEX[seg['category_id']]).all()
        # instance JSON: one annotation per thing segment, same pixels
        things = {k: s for k, s in segments.items() if s['category_id'] in THING_IDS}
        anns = inst_by_image.get(image['id'], [])
        assert len(anns) == len(things)
        decoded = []
        for a in anns:
            rle = a['segmentation']
            if isinstance(rle['counts'], list):
                rle = mask_utils.frPyObjects(rle, rle['size'][0], rle['size'][1])
            decoded.append((a['category_id'], a['iscrowd'], mask_utils.decode(rle).astype(bool)))
        for seg_id, seg in things.items():
            assert any(cat == seg['category_id'] and crowd == seg['iscrowd'] and np.array_equal(m, ids == seg_id)
                       for cat, crowd, m in decoded)


def test_scenes_have_several_things_and_stuff(dataset_dir):
    with open(osp.join(dataset_dir, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['classes'] == list(CLASSES)
    assert meta['stats']['train']['instances_per_image'] >= 2
    pan, _ = _split(dataset_dir, 'train')
    for ann in pan['annotations']:
        cats = [s['category_id'] for s in ann['segments_info']]
        assert sum(c not in THING_IDS for c in cats) >= 1   # at least one stuff region


def test_real_mmdet_panoptic_pipeline_reads_it(dataset_dir):
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets',
                                   'synthetic_panoptic.py'))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = dataset_dir + '/'
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 6
    sample = dataset[0]['data_samples']
    pan, _ = _split(dataset_dir, 'train')
    num_things = sum(s['category_id'] in THING_IDS and not s['iscrowd'] for s in pan['annotations'][0]['segments_info'])
    assert len(sample.gt_instances.labels) == num_things  # crowd segments go to ignored_instances
    assert int(sample.gt_instances.labels.max()) < 4
    assert sample.gt_sem_seg.sem_seg.shape[-2:] == (96, 128)


def test_mmdet_coco_dataset_reads_instances(dataset_dir):
    from mmdet.datasets import CocoDataset
    dataset = CocoDataset(data_root=dataset_dir + '/', ann_file='annotations/instances_val.json',
                          data_prefix=dict(img='val/'), metainfo=dict(classes=CLASSES[:4]), test_mode=True,
                          pipeline=[])
    assert len(dataset) == 3
    assert all(inst['bbox_label'] < 4 for item in dataset for inst in item['instances'])


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_train=0), 'num_train must be an integer in'),
    (dict(num_val=-1), 'num_val must be an integer in'),
    (dict(size=(8, 8)), 'size must be'),
    (dict(seed=-3), 'seed must be an integer in'),
])
def test_impossible_arguments_are_refused(kwargs, message):
    args = dict(num_train=2, num_val=1, size=(64, 64), seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        validate_args(**args)
