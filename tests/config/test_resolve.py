"""One setting per fact: data_root moves every dataloader and evaluator, classes and class counts come from
the annotation files, and a config the data contradicts is refused with one line naming file, key and fix."""
import json
import os
import re
import os.path as osp
import sys

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from m2f_mm.config import check_data_files, resolve_config
from m2f_mm.config.classes import classes_from_label_maps, read_categories, read_classes_file
from m2f_mm.errors import M2FConfigError

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, TESTS)
from own_dataset import write_coco_panoptic  # noqa: E402

REPO = osp.dirname(TESTS)
PANOPTIC = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py')
SEMANTIC = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-semantic.py')
COCO = osp.join(REPO, 'configs', 'm2f_r50_8xb2-lsj-50e_coco-panoptic.py')


@pytest.fixture(scope='module')
def coins(tmp_path_factory) -> str:
    return write_coco_panoptic(str(tmp_path_factory.mktemp('coins')), num_train=2, num_val=1, size=32)


def leaf(tmp_path, text: str, base: str = PANOPTIC) -> Config:
    """A leaf config file as a user writes it, loaded the way the tools load it."""
    path = tmp_path / 'leaf.py'
    path.write_text(f'_base_ = [{base!r}]\n' + text)
    return Config.fromfile(str(path))


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert '\n' not in text and 'Fix:' in text, text
    return text


def test_two_lines_point_every_loader_and_evaluator_at_the_data(tmp_path, coins):
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\n')
    resolution = resolve_config(cfg, 'train')
    for split in ('train', 'val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.data_root == coins + '/'
        assert dataset.metainfo.classes == ('coin', 'background')  # things first; the file lists background first
        assert dataset.metainfo.thing_classes == ('coin', ) and dataset.metainfo.stuff_classes == ('background', )
        assert len(dataset.metainfo.palette) == 2
    panoptic, instances, _ = cfg.val_evaluator
    assert panoptic.ann_file == osp.join(coins, 'annotations', 'panoptic_val.json')
    assert panoptic.seg_prefix == osp.join(coins, 'annotations', 'panoptic_val/')
    assert instances.ann_file == osp.join(coins, 'annotations', 'instances_val.json')
    head, fusion = cfg.model.panoptic_head, cfg.model.panoptic_fusion_head
    assert (head.num_things_classes, head.num_stuff_classes) == (1, 1) == \
        (fusion.num_things_classes, fusion.num_stuff_classes)
    assert resolution.lines()[0] == (f'classes: 2 (1 thing: coin; 1 stuff: background) from '
                                     f'{coins}/annotations/panoptic_train.json')
    check_data_files(cfg, ['train', 'val', 'test'])  # everything it names exists


def test_the_datasets_are_built_with_those_classes_and_labels(tmp_path, coins):
    from m2f_mm.registry import DATASETS
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\n')
    resolve_config(cfg, 'train')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.metainfo['classes'] == ('coin', 'background')
    sample = dataset.get_data_info(0)
    labels = {s['category']: s['is_thing'] for s in sample['segments_info']}
    assert labels == {0: True, 1: False}  # coin -> label 0 (a thing), background -> label 1 (stuff)


def test_a_dataset_data_root_set_explicitly_stays(tmp_path, coins):
    other = str(tmp_path / 'elsewhere') + '/'
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\ntest_dataloader = dict(dataset=dict(data_root={other!r}))\n')
    resolve_config(cfg, 'train')
    assert cfg.train_dataloader.dataset.data_root == coins + '/'
    assert cfg.test_dataloader.dataset.data_root == other
    assert cfg.test_evaluator[0].ann_file == osp.join(other, 'annotations', 'panoptic_val.json')
    with pytest.raises(M2FConfigError) as err:
        check_data_files(cfg, ['test'])
    assert one_line(err).startswith(f'test_dataloader.dataset.data_root {other} is not a folder')


def test_other_annotation_names_are_one_line_each_and_the_evaluators_follow(tmp_path, coins):
    os.makedirs(tmp_path / 'renamed', exist_ok=True)
    for name in ('panoptic_val.json', 'instances_val.json'):
        os.link(osp.join(coins, 'annotations', name), tmp_path / 'renamed' / name.replace('_val', '_holdout'))
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\n'
                         f"val_dataloader = dict(dataset=dict(ann_file={str(tmp_path / 'renamed' / 'panoptic_holdout.json')!r}))\n")
    resolve_config(cfg, 'train')
    assert cfg.val_evaluator[0].ann_file == str(tmp_path / 'renamed' / 'panoptic_holdout.json')
    assert cfg.val_evaluator[1].ann_file == str(tmp_path / 'renamed' / 'instances_holdout.json')


def test_counts_the_config_sets_against_the_data_name_file_key_and_fix(tmp_path, coins):
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\nmodel = dict(panoptic_head=dict(num_things_classes=4, '
                         'num_stuff_classes=3))\n')
    with pytest.raises(M2FConfigError) as err:
        resolve_config(cfg, 'train')
    text = one_line(err)
    assert text.startswith('model.panoptic_head.num_things_classes=4, model.panoptic_head.num_stuff_classes=3 '
                           f'(set in the config) disagree with {coins}/annotations/panoptic_train.json, which has '
                           '1 thing + 1 stuff classes')
    assert 'leave the class counts of model.panoptic_head out of the config' in text


def test_counts_that_agree_are_accepted(tmp_path, coins):
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\nmodel = dict(panoptic_head=dict(num_things_classes=1, '
                         'num_stuff_classes=1), panoptic_fusion_head=dict(num_things_classes=1, num_stuff_classes=1))\n')
    resolve_config(cfg, 'train')


def test_metainfo_classes_the_file_lacks_name_the_file(tmp_path, coins):
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\n'
                         "train_dataloader = dict(dataset=dict(metainfo=dict(classes=('coin', 'banknote'))))\n")
    with pytest.raises(M2FConfigError) as err:
        resolve_config(cfg, 'train')
    assert one_line(err).startswith("train_dataloader.dataset.metainfo.classes names ['banknote'], which are not "
                                    f'categories of {coins}/annotations/panoptic_train.json')


def test_a_subset_of_the_file_classes_is_allowed(tmp_path, coins):
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\n' + ''.join(
        f"{s}_dataloader = dict(dataset=dict(metainfo=dict(classes=('coin', ))))\n" for s in ('train', 'val', 'test')))
    resolve_config(cfg, 'train')
    assert cfg.model.panoptic_head.num_things_classes == 1 and cfg.model.panoptic_head.num_stuff_classes == 0


def test_splits_with_different_categories_are_refused(tmp_path, coins):
    other = tmp_path / 'other.json'
    data = json.load(open(osp.join(coins, 'annotations', 'panoptic_val.json')))
    data['categories'].append(dict(id=9, name='button', isthing=1))
    other.write_text(json.dumps(data))
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\nval_dataloader = dict(dataset=dict(ann_file={str(other)!r}))\n')
    with pytest.raises(M2FConfigError) as err:
        resolve_config(cfg, 'train')
    text = one_line(err)
    assert f'{coins}/annotations/panoptic_train.json' in text and str(other) in text
    assert "only in the second: ['button']" in text


def test_an_evaluator_file_of_another_dataset_is_refused_before_training(tmp_path, coins):
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\n'
                         "val_evaluator = [dict(type='M2FCocoPanopticMetric', ann_file='X', seg_prefix='Y')]\n")
    other = tmp_path / 'coco_like.json'
    other.write_text(json.dumps(dict(images=[], annotations=[], categories=[dict(id=1, name='person', isthing=1)])))
    cfg.val_evaluator[0].ann_file = str(other)
    with pytest.raises(M2FConfigError) as err:
        resolve_config(cfg, 'train')
    assert one_line(err).startswith(f"val_evaluator[0] (M2FCocoPanopticMetric).ann_file {other} lacks the classes "
                                    "['coin', 'background']")


def test_missing_files_are_named_with_their_key(tmp_path, coins):
    cfg = leaf(tmp_path, f'data_root = {str(tmp_path / "nothing") + "/"!r}\n')
    resolve_config(cfg, 'train')  # builds (the synthetic classes: the dataset type's fallback)...
    with pytest.raises(M2FConfigError) as err:  # ...but no run starts
        check_data_files(cfg, ['train', 'val'])
    assert one_line(err).startswith(f'train_dataloader.dataset.data_root {tmp_path}/nothing/ is not a folder')
    os.makedirs(tmp_path / 'half' / 'annotations')
    cfg = leaf(tmp_path, f'data_root = {str(tmp_path / "half") + "/"!r}\n')
    resolve_config(cfg, 'train')
    with pytest.raises(M2FConfigError) as err:
        check_data_files(cfg, ['train'])
    assert one_line(err).startswith(f'train_dataloader.dataset.ann_file {tmp_path}/half/annotations/panoptic_train.json '
                                    'does not exist. Fix: set train_dataloader.dataset.ann_file')


def test_a_missing_instances_file_names_the_converter(tmp_path, coins):
    os.makedirs(tmp_path / 'data')
    os.symlink(osp.join(coins, 'train'), tmp_path / 'data' / 'train')
    os.symlink(osp.join(coins, 'val'), tmp_path / 'data' / 'val')
    os.makedirs(tmp_path / 'data' / 'annotations')
    for name in ('panoptic_train.json', 'panoptic_val.json', 'panoptic_train', 'panoptic_val'):
        os.symlink(osp.join(coins, 'annotations', name), tmp_path / 'data' / 'annotations' / name)
    cfg = leaf(tmp_path, f'data_root = {str(tmp_path / "data") + "/"!r}\n')
    resolve_config(cfg, 'train')
    with pytest.raises(M2FConfigError) as err:
        check_data_files(cfg, ['train', 'val'])
    text = one_line(err)
    assert text.startswith(f'val_evaluator[1].ann_file {tmp_path}/data/annotations/instances_val.json does not exist')
    assert 'panoptic_to_instances.py' in text


def test_a_checkpoint_s_classes_win_for_inference(tmp_path, coins):
    cfg = Config.fromfile(PANOPTIC)  # names the synthetic data, 4 + 3 classes
    meta = dict(classes=('coin', 'background'), thing_classes=('coin', ), stuff_classes=('background', ),
                palette=[(1, 2, 3), (4, 5, 6)])
    resolve_config(cfg, 'inference', dataset_meta=meta)
    assert cfg.model.panoptic_head.num_things_classes == 1 and cfg.model.panoptic_fusion_head.num_stuff_classes == 1
    assert cfg.test_dataloader.dataset.metainfo.palette == [(1, 2, 3), (4, 5, 6)]


def test_coco_configs_take_coco_classes_without_the_files_and_the_users_with_them(tmp_path, coins):
    cfg = Config.fromfile(COCO)
    resolve_config(cfg, 'train')
    assert (cfg.model.panoptic_head.num_things_classes, cfg.model.panoptic_head.num_stuff_classes) == (80, 53)
    cfg = leaf(tmp_path, f'data_root = {coins + "/"!r}\n' + ''.join(
        f"{s}_dataloader = dict(dataset=dict(ann_file='annotations/panoptic_{p}.json', "
        f"data_prefix=dict(img='{p}/', seg='annotations/panoptic_{p}/')))\n"
        for s, p in (('train', 'train'), ('val', 'val'), ('test', 'val'))), base=COCO)
    resolve_config(cfg, 'train')
    assert (cfg.model.panoptic_head.num_things_classes, cfg.model.panoptic_head.num_stuff_classes) == (1, 1)


# -- the class sources --------------------------------------------------------------------------------------

def test_categories_of_a_big_file_are_read_from_its_tail(tmp_path, monkeypatch):
    import m2f_mm.config.classes as classes_module
    cats = [dict(id=5, name='a', isthing=1), dict(id=2, name='b', isthing=0)]
    path = tmp_path / 'big.json'
    path.write_text(json.dumps(dict(images=[dict(id=i, file_name='x' * 50) for i in range(2000)], categories=cats)))
    monkeypatch.setattr(classes_module, '_TAIL_BYTES', 1024)
    monkeypatch.setattr(json, 'load', lambda *a, **k: pytest.fail('parsed the whole file'))
    assert read_categories(str(path)) == cats


@pytest.mark.parametrize('content, problem', [
    ('{"images": []}', 'has no "categories" list'),
    ('not json', 'cannot read annotation file'),
    ('{"categories": []}', 'empty "categories" list'),
    ('{"categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]}', "names categories ['a'] twice"),
])
def test_annotation_files_without_usable_categories(tmp_path, content, problem):
    path = tmp_path / 'ann.json'
    path.write_text(content)
    with pytest.raises(M2FConfigError, match=re.escape(problem)):
        read_categories(str(path))


def test_classes_files(tmp_path):
    (tmp_path / 'classes.txt').write_text('road\n\nsky\n')
    got = read_classes_file(str(tmp_path / 'classes.txt'))
    assert got.classes == ('road', 'sky') and got.thing_classes is None and len(got.palette) == 2
    (tmp_path / 'classes.json').write_text(json.dumps([dict(id=1, name='sky', color=[0, 0, 255]),
                                                       dict(id=0, name='road', color=[128, 64, 128])]))
    got = read_classes_file(str(tmp_path / 'classes.json'))
    assert got.classes == ('road', 'sky') and got.palette == [(128, 64, 128), (0, 0, 255)]
    (tmp_path / 'bad.json').write_text(json.dumps([dict(id=1, name='sky'), dict(id=3, name='road')]))
    with pytest.raises(M2FConfigError, match='labels 0, 1'):
        read_classes_file(str(tmp_path / 'bad.json'))


def test_classes_from_label_maps(tmp_path):
    for i, values in enumerate(([0, 2], [1, 255], [255, 255])):
        Image.fromarray(np.array([values], np.uint8)).save(tmp_path / f'{i}.png')
    got = classes_from_label_maps(sorted(str(p) for p in tmp_path.glob('*.png')), str(tmp_path))
    assert got.classes == ('class_0', 'class_1', 'class_2')


def test_semantic_configs_read_the_classes_file_then_the_label_maps(tmp_path):
    root = tmp_path / 'sem'
    for split in ('train', 'val'):
        os.makedirs(root / split)
        os.makedirs(root / 'annotations' / f'semantic_{split}')
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / split / 'a.jpg')
        Image.fromarray(np.array([[0, 1, 4, 255]] * 4, np.uint8)).save(root / 'annotations' / f'semantic_{split}' / 'a.png')
    cfg = leaf(tmp_path, f'data_root = {str(root) + "/"!r}\n', base=SEMANTIC)
    resolution = resolve_config(cfg, 'train')
    assert cfg.model.decode_head.num_classes == 5 and resolution.classes.classes[-1] == 'class_4'
    (root / 'annotations' / 'classes.txt').write_text('\n'.join('abcde'))
    cfg = leaf(tmp_path, f'data_root = {str(root) + "/"!r}\n', base=SEMANTIC)
    resolve_config(cfg, 'train')
    assert cfg.train_dataloader.dataset.metainfo.classes == tuple('abcde')
    assert cfg.model.decode_head.num_classes == 5
