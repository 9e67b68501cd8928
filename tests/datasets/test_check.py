"""Planted faults are found up front by check_dataset.py, stop training with one line, or are skipped."""
import pytest
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from m2f_mm.datasets.check import Problem, label_problems, summary

SEMANTIC_CONFIG = '''
default_scope = 'mmseg'
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
train_dataloader = dict(dataset=dict(
    type='BaseSegDataset', data_root={root!r}, img_suffix='.jpg', seg_map_suffix='.png',
    data_prefix=dict(img_path='train', seg_map_path='annotations/semantic_train'),
    metainfo=dict(classes=('circle', 'square', 'triangle', 'star', 'sky', 'grass', 'water')),
    pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]))
'''


PANOPTIC, SEMANTIC, BOTH = 'pan', 'sem', 'both'


def plant_faults(root: str) -> dict:
    """One fault per train image 1..12 of a generated dataset (13 images); returns
    {image file name: (kind of problem, which config sees it: PANOPTIC, SEMANTIC or BOTH)}."""
    with open(osp.join(root, 'annotations', 'panoptic_train.json')) as f:
        pan = json.load(f)
    anns = {a['image_id']: a for a in pan['annotations']}
    images = {i['id']: i for i in pan['images']}
    names = {i['id']: i['file_name'] for i in sorted(pan['images'], key=lambda i: i['id'])}
    ids = sorted(names)
    image = lambda k: osp.join(root, 'train', names[ids[k]])  # noqa: E731
    data = open(image(0), 'rb').read()
    open(image(0), 'wb').write(data[:len(data) // 2])                       # truncated image
    os.remove(image(1))                                                      # missing image
    anns[ids[2]]['segments_info'].pop(0)                                     # PNG id not in JSON
    thing = next(c['id'] for c in pan['categories'] if c['isthing'])
    anns[ids[3]]['segments_info'].append(dict(id=12345678, category_id=thing, iscrowd=0, bbox=[0, 0, 2, 2],
                                              area=4))                       # JSON id not in PNG
    anns[ids[4]]['segments_info'][0]['category_id'] = 999                    # unknown category
    segments = anns[ids[6]]['segments_info']
    segments.append(dict(segments[0]))                                       # segment listed twice
    images[ids[8]]['id'] = ids[7]                                            # image id used twice
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(image(9))           # decodes to 1x1, annotated 96x96
    images[ids[10]]['file_name'] = '../../' + names[ids[10]]                # leaves the data root
    category = anns[ids[11]]['segments_info'][0]
    category['category_id'] = str(category['category_id'])                  # category id written as a string
    with open(osp.join(root, 'annotations', 'panoptic_train.json'), 'w') as f:
        json.dump(pan, f)
    sem_dir = osp.join(root, 'annotations', 'semantic_train')
    sem_path = osp.join(sem_dir, names[ids[5]].replace('.jpg', '.png'))
    sem = np.array(Image.open(sem_path))
    sem[:3, :3] = 50                                                         # semantic label out of range
    Image.fromarray(sem).save(sem_path)
    sem_path = osp.join(sem_dir, names[ids[12]].replace('.jpg', '.png'))
    Image.fromarray(np.array(Image.open(sem_path))[:32]).save(sem_path)     # label PNG 32x96, image 96x96
    faults = [('unreadable image', BOTH), ('missing file', PANOPTIC), ('annotation disagrees with its PNG', PANOPTIC),
              ('annotation disagrees with its PNG', PANOPTIC), ('unknown category', PANOPTIC),
              ('label out of range', SEMANTIC), ('duplicate segment id', PANOPTIC), ('duplicate image id', PANOPTIC),
              None, ('image size differs from annotation', BOTH), ('path outside the data root', PANOPTIC),
              ('id of the wrong type', PANOPTIC), ('image size differs from annotation', SEMANTIC)]
    return {names[ids[k]]: fault for k, fault in enumerate(faults) if fault is not None}


def test_label_problems_hand_computed():
    results = dict(gt_seg_map=np.array([[0, 6, 255], [7, 3, 300]]), gt_bboxes_labels=np.array([0, 7, -1]))
    found = label_problems(results, num_classes=7)
    assert found[0].startswith('semantic map holds labels [7, 300]') and 'instance labels [-1, 7]' in found[1]
    assert label_problems(dict(gt_seg_map=np.array([[0, 255]])), num_classes=1) == []


def test_summary_counts_kinds():
    problems = [Problem('train', 'a.jpg', 1, 'missing file', 'x'), Problem('train', 'b.jpg', 2, 'missing file', 'y'),
                Problem('val', 'a.jpg', 1, 'unreadable image', 'z')]
    text = summary(problems, 10)
    assert '2  missing file' in text and '1  unreadable image' in text and '3 problems in 3 of 10 samples' in text
    assert summary([], 4) == 'checked 4 samples: no problems found'


def _faulty_data(tmp_path, tools):
    root = tools.make_data(str(tmp_path / 'data'), num_train=13, num_val=2)
    return root, plant_faults(root)


@pytest.mark.slow
def test_check_dataset_lists_exactly_the_planted_faults(tmp_path, tools):
    root, faults = _faulty_data(tmp_path, tools)
    config = tools.write_config(str(tmp_path / 'pan.py'), root)
    out = tools.run(['tools/misc/check_dataset.py', config, '--split', 'train', 'val', '--workers', '2',
                     '--out', str(tmp_path / 'problems.json')])
    assert out.returncode == 1, out.stderr[-2000:]
    problems = json.load(open(tmp_path / 'problems.json'))
    found = {(osp.basename(p['file']), p['kind']) for p in problems}
    assert found == {(name, kind) for name, (kind, where) in faults.items() if where != SEMANTIC}, out.stdout
    assert '10 problems in 10 of' in out.stdout and 'Fix:' in out.stdout
    for p in problems:  # each names its file and image id and says how to fix it
        assert p['file'].endswith('.jpg') and isinstance(p['img_id'], int) and p['fix'] and p['detail']
        assert f"{p['file']} (image id {p['img_id']}): {p['kind']}: " in out.stdout
    by_kind = {p['kind']: p for p in problems}
    assert by_kind['duplicate image id']['detail'].startswith('2 image entries have id 8 (000000000008.jpg, '
                                                              '000000000009.jpg)')
    assert "category_id '" in by_kind['id of the wrong type']['detail']
    assert 'decodes to 1x1 (HxW)' in by_kind['image size differs from annotation']['detail']

    sem_config = tmp_path / 'sem.py'
    sem_config.write_text(SEMANTIC_CONFIG.format(root=root))
    out = tools.run(['tools/misc/check_dataset.py', str(sem_config), '--split', 'train',
                     '--out', str(tmp_path / 'sem.json')])
    assert out.returncode == 1, out.stderr[-2000:]
    found = {(osp.basename(p['file']), p['kind']) for p in json.load(open(tmp_path / 'sem.json'))}
    # mmseg lists the images it finds on disk, so the missing one is simply not part of this dataset
    assert found == {(name, kind) for name, (kind, where) in faults.items() if where != PANOPTIC}, out.stdout
    clean = tools.make_data(str(tmp_path / 'clean'), num_train=3, num_val=2)
    out = tools.run(['tools/misc/check_dataset.py', tools.write_config(str(tmp_path / 'ok.py'), clean)])
    assert out.returncode == 0 and 'no problems found' in out.stdout


@pytest.mark.slow
def test_training_stops_at_a_bad_sample_with_one_line(tmp_path, tools):
    root = tools.make_data(str(tmp_path / 'data'), num_train=4, num_val=2)
    path = osp.join(root, 'train', '000000000002.jpg')
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    config = tools.write_config(str(tmp_path / 'cfg.py'), root, max_iters=2, batch_size=4)  # all images at once
    out = tools.run(['tools/train.py', config, '--work-dir', str(tmp_path / 'w')])
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('m2f_mm: bad sample ') and '000000000002.jpg (image id 2' in last
    assert 'failed to load image' in last and 'check_dataset.py' in last and 'Traceback' not in out.stderr


@pytest.mark.slow
def test_skip_mode_trains_to_the_end_and_counts(tmp_path, tools):
    root, _ = _faulty_data(tmp_path, tools)
    config = tools.write_config(str(tmp_path / 'cfg.py'), root, max_iters=4, batch_size=4)
    out = tools.run(['tools/train.py', config, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                     'train_dataloader.bad_samples=skip'])
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'category_id 999' in log and 'skipped image' in log   # left out when the annotation file is read
    assert 'skipped bad sample' in log and 'skipped so far' in log
    assert (tmp_path / 'w' / 'iter_4.pth').exists()


@pytest.mark.slow
def test_training_refuses_annotation_faults_with_one_line(tmp_path, tools):
    """A fault in the annotation file stops the run when the dataset is built; an image that decodes to
    another size stops it when first drawn; each with one line naming file, image id and fix."""
    root = tools.make_data(str(tmp_path / 'data'), num_train=4, num_val=2)
    ann_path = osp.join(root, 'annotations', 'panoptic_train.json')
    with open(ann_path) as f:
        pan = json.load(f)
    segments = pan['annotations'][1]['segments_info']
    segments.append(dict(segments[0]))
    with open(ann_path, 'w') as f:
        json.dump(pan, f)
    config = tools.write_config(str(tmp_path / 'cfg.py'), root, max_iters=2, batch_size=4)
    out = tools.run(['tools/train.py', config, '--work-dir', str(tmp_path / 'w')])
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1 and 'Traceback' not in out.stderr, out.stderr[-3000:]
    assert last.startswith('m2f_mm: ') and 'train/000000000002.jpg (image id 2): segments_info lists segment id' in last
    assert 'Fix: give each segment of the image its own id' in last and 'check_dataset.py' in last

    segments.pop()
    with open(ann_path, 'w') as f:
        json.dump(pan, f)
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(osp.join(root, 'train', '000000000003.jpg'))
    out = tools.run(['tools/train.py', config, '--work-dir', str(tmp_path / 'w')])
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1 and 'Traceback' not in out.stderr, out.stderr[-3000:]
    assert last.startswith('m2f_mm: bad sample ') and '000000000003.jpg (image id 3' in last
    assert 'decodes to 1x1 (HxW) but its annotation says 96x96' in last and 'fix: re-export the image' in last
