"""Synthetic generator: whole-tree determinism, scene properties, and the real mmdet / mmseg /
pycocotools readers (complements test_synthetic_dataset.py, which checks PNG <-> JSON agreement)."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from m2f_mm.datasets.synthetic import (CLASS_INDEX, CLASSES, MIN_AREA, PALETTE, STUFF_CLASSES, STUFF_IDS,
                                       THING_CLASSES, THING_IDS, generate_dataset, generate_scene,
                                       image_rng, segments_info, uncompressed_rle)
from m2f_mm.structures.panoptic_format import rgb2id

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = (64, 80)
NUM_TRAIN, NUM_VAL = 5, 2


def _crowd_seed() -> int:
    """The first seed whose first NUM_TRAIN train scenes hold a crowd segment (crowds are rare)."""
    for seed in range(200):
        for i in range(NUM_TRAIN):
            if any(s['iscrowd'] for s in generate_scene(image_rng(seed, 'train', i), *SIZE).segments):
                return seed
    raise AssertionError('no crowd segment in 200 seeds')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    seed = _crowd_seed()
    out = str(tmp_path_factory.mktemp('synthetic') / 'data')
    generate_dataset(out, NUM_TRAIN, NUM_VAL, SIZE, seed)
    return out, seed


def _files(root):
    found = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                found[osp.relpath(path, root)] = f.read()
    return found


def _load(out, name):
    with open(osp.join(out, 'annotations', name)) as f:
        return json.load(f)


def _pan_ids(out, split, file_name):
    return rgb2id(np.array(Image.open(osp.join(out, 'annotations', f'panoptic_{split}', file_name))))


def test_whole_tree_deterministic_and_streams_independent(data, tmp_path):
    out, seed = data
    again = str(tmp_path / 'again')
    generate_dataset(again, NUM_TRAIN, NUM_VAL, SIZE, seed)
    files = _files(out)
    assert len(files) == 1 + 5 + 3 * (NUM_TRAIN + NUM_VAL)  # meta + 4 JSON + classes + (jpg, pan, sem) per image
    assert _files(again) == files
    # each image has its own stream: fewer images -> the same first images
    fewer = str(tmp_path / 'fewer')
    generate_dataset(fewer, 2, 1, SIZE, seed)
    for rel in ('train/000000000002.jpg', 'annotations/panoptic_train/000000000002.png',
                'annotations/semantic_val/000001000001.png'):
        assert _files(fewer)[rel] == files[rel]
    other = str(tmp_path / 'other')
    generate_dataset(other, NUM_TRAIN, NUM_VAL, SIZE, seed + 1)
    other_files = _files(other)
    images = [rel for rel in files if rel.endswith('.jpg')]
    assert all(files[rel] != other_files[rel] for rel in images)
    # train and val come from disjoint streams
    assert files['train/000000000001.jpg'] != files['val/000001000001.jpg']


def _thing_hued(image: np.ndarray) -> np.ndarray:
    """bool[H, W]: saturated pixels in the things' hue range (red .. yellow, magenta), which no stuff
    texture has (sky and water are blue, grass green)."""
    hsv = np.asarray(Image.fromarray(image).convert('HSV'), np.float32) / 255
    return ((hsv[..., 0] < 0.2) | (hsv[..., 0] > 0.79)) & (hsv[..., 1] > 0.4)


@pytest.mark.slow
def test_scene_properties():
    """Design version 2 at its default 192 x 192 (docs/demo.md): many things of resolvable size that
    touch and occlude, thing-coloured clutter labelled as stuff, rare crowds, thin VOID lines."""
    scenes = [generate_scene(image_rng(0, 'train', i), 192, 192) for i in range(60)]
    touching = crowds = void_scenes = cluttered = 0
    seen, num_things, sides = set(), [], []
    for scene in scenes:
        infos = segments_info(scene.pan_ids, scene.segments)
        assert scene.image.shape == (192, 192, 3) and scene.image.dtype == np.uint8
        assert 1 <= sum(s['category_id'] in STUFF_IDS for s in infos) <= len(STUFF_IDS)
        things = [s for s in infos if s['category_id'] in THING_IDS]
        assert all(s['area'] >= MIN_AREA for s in things)  # occlusion never leaves slivers
        num_things.append(sum(not s['iscrowd'] for s in things))
        sides += [max(s['bbox'][2:]) for s in things if not s['iscrowd']]
        crowds += any(s['iscrowd'] for s in infos)
        void_scenes += bool((scene.pan_ids == 0).any())
        assert (scene.pan_ids == 0).mean() < 0.06  # VOID is thin lines only
        is_thing = np.isin(scene.pan_ids // 100_000, THING_IDS)
        right = (scene.pan_ids[:, 1:] != scene.pan_ids[:, :-1]) & is_thing[:, 1:] & is_thing[:, :-1]
        down = (scene.pan_ids[1:] != scene.pan_ids[:-1]) & is_thing[1:] & is_thing[:-1]
        touching += bool(right.any() or down.any())  # two instances share an edge
        hued = _thing_hued(scene.image)
        is_stuff = np.isin(scene.pan_ids // 100_000, STUFF_IDS)
        cluttered += int((hued & is_stuff).sum()) >= 20  # distractors painted in thing hues, labelled stuff
        assert hued[is_thing].mean() > 0.5  # the things themselves are thing-hued
        seen |= {s['category_id'] for s in infos}
    assert 7 <= np.mean(num_things) <= 12 and min(num_things) >= 2 and max(num_things) <= 16
    assert np.percentile(sides, 10) >= 8 and np.median(sides) >= 14  # resolvable at stride 4
    assert touching >= 40 and void_scenes >= 30 and cluttered >= 50
    assert 1 <= crowds <= 12  # present but rare
    assert seen == set(THING_IDS + STUFF_IDS)
    # counts scale with the image area: a quarter of the pixels holds about a quarter of the things
    small = [generate_scene(image_rng(0, 'train', i), 96, 96) for i in range(60)]
    small_things = np.mean([sum(s['category_id'] in THING_IDS and not s['iscrowd'] for s in sc.segments)
                            for sc in small])
    assert 0.15 * np.mean(num_things) <= small_things <= 0.4 * np.mean(num_things)


def test_crowd_rle_roundtrip():
    starts_on, starts_off = np.random.default_rng(0).random((2, 7, 5)) > 0.5
    starts_on[0, 0], starts_off[0, 0] = True, False  # COCO RLE counts start with a run of zeros
    for mask in (starts_on, starts_off, np.ones((3, 4), bool), np.zeros((3, 4), bool)):
        rle = mask_utils.frPyObjects(uncompressed_rle(mask), *mask.shape)
        assert np.array_equal(mask_utils.decode(rle).astype(bool), mask)


def test_mmdet_coco_dataset_loads_instance_masks(data):
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
    out, _ = data
    dataset = CocoDataset(data_root=out + '/', ann_file='annotations/instances_train.json',
                          data_prefix=dict(img='train/'), metainfo=dict(classes=THING_CLASSES),
                          pipeline=[LoadImageFromFile(), LoadAnnotations(with_bbox=True, with_mask=True),
                                    PackDetInputs()])
    assert len(dataset) == NUM_TRAIN
    pan = _load(out, 'panoptic_train.json')
    seen_crowd = 0
    for i in range(NUM_TRAIN):
        sample = dataset[i]['data_samples']
        assert tuple(dataset[i]['inputs'].shape) == (3, *SIZE)
        segs = pan['annotations'][i]['segments_info']
        ids = _pan_ids(out, 'train', pan['annotations'][i]['file_name'])
        things = [s for s in segs if s['category_id'] in THING_IDS and not s['iscrowd']]
        crowd = [s for s in segs if s['iscrowd']]
        seen_crowd += len(crowd)
        assert sample.gt_instances.labels.tolist() == [CLASS_INDEX[s['category_id']] for s in things]
        assert len(sample.ignored_instances) == len(crowd)
        masks = sample.gt_instances.masks.to_ndarray().astype(bool)
        for mask, seg in zip(masks, things):
            assert np.array_equal(mask, ids == seg['id'])
        for box, seg in zip(sample.gt_instances.bboxes.tensor.tolist(), things):
            x, y, w, h = seg['bbox']
            assert box == [x, y, x + w, y + h]
    assert seen_crowd >= 1


def test_coco_panoptic_json_as_mmdet_expects(data):
    """mmdet's own CocoPanopticDataset (no pipeline, so no panopticapi) + its PNG -> semantic rule."""
    import mmcv
    from mmdet.datasets import CocoPanopticDataset
    out, _ = data
    dataset = CocoPanopticDataset(
        data_root=out + '/', ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
        metainfo=dict(classes=CLASSES, thing_classes=THING_CLASSES, stuff_classes=STUFF_CLASSES),
        pipeline=[], test_mode=True)
    assert len(dataset) == NUM_VAL
    assert {c: dataset.cat2label[c] for c in dataset.cat_ids} == CLASS_INDEX  # non-contiguous ids -> index
    for i in range(NUM_VAL):
        info = dataset.get_data_info(i)
        assert osp.isfile(info['img_path']) and osp.isfile(info['seg_map_path'])
        assert (info['height'], info['width']) == SIZE
        # LoadPanopticAnnotations' rule, re-implemented: it must give our semantic PNG
        rgb = mmcv.imfrombytes(open(info['seg_map_path'], 'rb').read(), flag='color', channel_order='rgb')
        r, g, b = rgb.astype(np.int64).transpose(2, 0, 1)
        ids = r + 256 * g + 65536 * b
        gt_seg = np.full(ids.shape, 255, np.int64)
        for seg in info['segments_info']:
            gt_seg[ids == seg['id']] = seg['category']
        sem = np.array(Image.open(info['seg_map_path'].replace('panoptic_val', 'semantic_val')))
        assert np.array_equal(gt_seg, sem)
        assert len(info['instances']) == sum(s['is_thing'] for s in info['segments_info']) > 0


def test_instances_json_self_evaluates_to_perfect_ap(data, capsys):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    out, _ = data
    gt = COCO(osp.join(out, 'annotations', 'instances_train.json'))
    assert [c['id'] for c in gt.loadCats(gt.getCatIds())] == list(THING_IDS)
    anns = gt.loadAnns(gt.getAnnIds())
    assert len({a['id'] for a in anns}) == len(anns)
    results = []
    for a in anns:
        mask = gt.annToMask(a)
        assert int(mask.sum()) == a['area']
        if not a['iscrowd']:
            rle = mask_utils.encode(np.asfortranarray(mask))
            results.append(dict(image_id=a['image_id'], category_id=a['category_id'], score=1.0,
                                segmentation=dict(size=rle['size'], counts=rle['counts'].decode())))
    evaluator = COCOeval(gt, gt.loadRes(results), 'segm')
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_mmseg_base_seg_dataset_reads_semantic_pngs(data):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
    out, _ = data
    dataset = BaseSegDataset(data_root=out, data_prefix=dict(img_path='val', seg_map_path='annotations/semantic_val'),
                             img_suffix='.jpg', seg_map_suffix='.png', metainfo=dict(classes=CLASSES, palette=PALETTE),
                             pipeline=[LoadImageFromFile(), LoadAnnotations(), PackSegInputs()])
    assert len(dataset) == NUM_VAL
    pan = _load(out, 'panoptic_val.json')
    for i in range(NUM_VAL):
        sem = dataset[i]['data_samples'].gt_sem_seg.data[0].numpy()
        ids = _pan_ids(out, 'val', pan['annotations'][i]['file_name'])
        assert sem.shape == SIZE and set(np.unique(sem)) <= set(range(len(CLASSES))) | {255}
        assert np.array_equal(sem == 255, ids == 0)


def test_config_metainfo_matches_generator(tmp_path):
    """The classes the main-job config resolves to: the generator's, from the files it writes and (without them)
    from the dataset type's METAINFO; and the classes file the semantic config reads."""
    import json

    from mmengine.config import Config

    from m2f_mm.config import resolve_config
    from m2f_mm.datasets.synthetic import generate_dataset
    config = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py')
    out = str(tmp_path / 'data')
    generate_dataset(out, num_train=1, num_val=1, size=(64, 64))
    for options in ({}, {'data_root': out + '/'}):
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(options)
        resolve_config(cfg, 'train')
        meta = cfg.train_dataloader.dataset.metainfo
        assert tuple(meta.classes) == CLASSES and tuple(meta.thing_classes) == THING_CLASSES
        assert tuple(meta.stuff_classes) == STUFF_CLASSES
        assert [tuple(c) for c in meta.palette] == list(PALETTE)
    classes_file = json.load(open(osp.join(out, 'annotations', 'classes.json')))
    assert tuple(classes_file['classes']) == CLASSES and [tuple(c) for c in classes_file['palette']] == list(PALETTE)


def test_generate_dataset_refuses_foreign_dir_and_replaces_its_own(tmp_path):
    foreign = tmp_path / 'foreign'
    (foreign / 'train').mkdir(parents=True)
    (foreign / 'train' / 'keep.jpg').write_bytes(b'x')
    with pytest.raises(ValueError, match='^out must be'):
        generate_dataset(str(foreign), 2, 1, SIZE, 0)
    assert (foreign / 'train' / 'keep.jpg').read_bytes() == b'x'
    own = str(tmp_path / 'own')
    generate_dataset(own, 4, 2, SIZE, 0)
    generate_dataset(own, 2, 1, SIZE, 0)  # no stale images left for directory-scanning loaders
    assert sorted(os.listdir(osp.join(own, 'train'))) == ['000000000001.jpg', '000000000002.jpg']
    assert len(os.listdir(osp.join(own, 'annotations', 'semantic_val'))) == 1


@pytest.mark.slow
@pytest.mark.parametrize('args, name', [(['--num-train', '0'], 'num_train'), (['--size', '8', '40'], 'size'),
                                        (['--seed', '-1'], 'seed'), ([], 'out')])
def test_cli_refuses_bad_arguments_without_traceback(tmp_path, args, name):
    out = tmp_path / 'out'
    if name == 'out':
        out.mkdir()
        (out / 'notes.txt').write_text('mine')
    tool = osp.join(REPO, 'tools', 'dataset_converters', 'make_synthetic_data.py')
    proc = subprocess.run([sys.executable, tool, '--out', str(out), '--num-train', '2', '--num-val', '1', *args],
                          capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert f'{name} must be' in proc.stderr
    if name == 'out':
        assert os.listdir(out) == ['notes.txt']
