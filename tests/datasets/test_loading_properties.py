"""Property: a generated COCO panoptic sample either loads exactly the targets its annotation describes,
or is listed by check_dataset AND refused by the loader; never a silently different target.

Each example writes a two-image annotation file (random 16-32 px scenes of rectangles, some of them
crowd things, VOID where nothing is painted) with this test's own PNG encoding, then injects at most
one fault into the first image: a repeated segment, a repeated image id, an image that decodes to
another size, a path out of the data root, ids of the wrong type. Integral float ids (``7.0``) are not
a fault and must load as the integers.
"""
import importlib.util
import json
import os
import os.path as osp
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmengine.registry import init_default_scope
from PIL import Image

from m2f_mm.datasets.check import check_indices
from m2f_mm.datasets.panoptic import AnnotationMismatchError
from m2f_mm.errors import M2FBadSampleError
from m2f_mm.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CATEGORIES = [dict(id=1, name='a', isthing=1), dict(id=2, name='b', isthing=1),
              dict(id=10, name='c', isthing=0), dict(id=11, name='d', isthing=0)]
LABEL = {1: 0, 2: 1, 10: 2, 11: 3}
META = dict(classes=('a', 'b', 'c', 'd'), thing_classes=('a', 'b'), stuff_classes=('c', 'd'))
IMAGE_IDS = (7, 9)
FAULTS = {  # injected fault -> the kind check_dataset reports (None: not a fault)
    'none': None, 'integral float ids': None, 'duplicate segment': 'duplicate segment id',
    'duplicate image id': 'duplicate image id', 'image decodes to another size': 'image size differs from annotation',
    'path outside the data root': 'path outside the data root', 'string category_id': 'id of the wrong type',
    'boolean category_id': 'id of the wrong type', 'fractional segment id': 'id of the wrong type',
    'string image id': 'id of the wrong type'}


def _check_dataset_tool():
    spec = importlib.util.spec_from_file_location('m2f_tool_check_dataset',
                                                  osp.join(REPO, 'tools', 'misc', 'check_dataset.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECK_DATASET = _check_dataset_tool()


@st.composite
def scenes(draw):
    """-> (pan [H,W] int64 segment ids, 0 = VOID; segments [(id, category_id, iscrowd)] of the ids present)."""
    h, w = draw(st.integers(16, 32)), draw(st.integers(16, 32))
    count = draw(st.integers(1, 5))
    ids = draw(st.lists(st.integers(1, 2 ** 24 - 1), min_size=count, max_size=count, unique=True))
    pan = np.zeros((h, w), np.int64)
    for seg_id in ids:
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        y1, x1 = draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))
        pan[y0:y1, x0:x1] = seg_id  # later rectangles cover earlier ones, possibly whole
    segments = []
    for seg_id in ids:
        if (pan == seg_id).any():
            category = draw(st.sampled_from(sorted(LABEL)))
            segments.append((seg_id, category, int(category < 10 and draw(st.booleans()))))
    return pan, segments


def _encode(pan: np.ndarray) -> np.ndarray:
    """COCO panoptic colour of each id: R + 256 G + 256^2 B."""
    return np.stack([pan % 256, pan // 256 % 256, pan // 65536], axis=-1).astype(np.uint8)


def _segment_info(pan, seg_id, category, crowd) -> dict:
    ys, xs = np.nonzero(pan == seg_id)
    return dict(id=seg_id, category_id=category, iscrowd=crowd, area=len(ys),
                bbox=[int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)])


def _write(root: str, scenes_, fault: str, repeat: int) -> dict:
    """Both images, their PNGs and the JSON, with ``fault`` in the first image -> the JSON as written."""
    for folder in ('img', 'pan'):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    images, annotations = [], []
    for (pan, segments), img_id in zip(scenes_, IMAGE_IDS):
        name = f'{img_id}.jpg'
        Image.fromarray(np.full(pan.shape + (3, ), 128, np.uint8)).save(osp.join(root, 'img', name))
        Image.fromarray(_encode(pan)).save(osp.join(root, 'pan', f'{img_id}.png'))
        images.append(dict(id=img_id, file_name=name, height=pan.shape[0], width=pan.shape[1]))
        annotations.append(dict(image_id=img_id, file_name=f'{img_id}.png',
                                segments_info=[_segment_info(pan, *s) for s in segments]))
    first, segments = images[0], annotations[0]['segments_info']
    target = segments[repeat % len(segments)]
    if fault == 'integral float ids':
        first['id'] = annotations[0]['image_id'] = float(first['id'])
        for seg in segments:
            seg.update(id=float(seg['id']), category_id=float(seg['category_id']))
    elif fault == 'duplicate segment':
        segments.append(dict(target))
    elif fault == 'duplicate image id':
        images[1]['id'] = annotations[1]['image_id'] = first['id']
    elif fault == 'image decodes to another size':
        h, w = scenes_[0][0].shape
        shape = [(w, h), (h + 1, w), (1, 1)][repeat % 3] if h != w else [(h + 1, w), (1, 1)][repeat % 2]
        Image.fromarray(np.zeros(shape + (3, ), np.uint8)).save(osp.join(root, 'img', first['file_name']))
    elif fault == 'path outside the data root':
        for folder, ext in (('img', '.jpg'), ('pan', '.png')):  # a real file where the path leads
            os.replace(osp.join(root, folder, f'{first["id"]}{ext}'), osp.join(root, '..', f'{first["id"]}{ext}'))
        first['file_name'] = f'../../{first["id"]}.jpg'
        annotations[0]['file_name'] = f'../../{first["id"]}.png'
    elif fault == 'string category_id':
        target['category_id'] = str(target['category_id'])
    elif fault == 'boolean category_id':
        target['category_id'] = True
    elif fault == 'fractional segment id':
        target['id'] += 0.5
    elif fault == 'string image id':
        first['id'] = annotations[0]['image_id'] = str(first['id'])
    data = dict(images=images, annotations=annotations, categories=CATEGORIES)
    with open(osp.join(root, 'ann.json'), 'w') as f:
        json.dump(data, f)
    return data


def _dataset_cfg(root: str, dataset_type: str, **args) -> dict:
    cfg = dict(type=dataset_type, data_root=root, ann_file='ann.json', data_prefix=dict(img='img/', seg='pan/'),
               test_mode=True, serialize_data=False, pipeline=[dict(type='LoadImageFromFile'),
                                                               dict(type='M2FLoadPanopticAnnotations')], **args)
    if dataset_type == 'M2FCocoPanopticDataset':
        cfg['metainfo'] = META
    return cfg


def _assert_exact_targets(out: dict, pan: np.ndarray, segments) -> None:
    """The loader's output is what the annotation describes (mmdet's LoadPanopticAnnotations contract:
    boxes, labels and masks of the non-crowd things in listing order; crowd regions keep their class
    in the semantic map)."""
    things = [s for s in segments if s[1] < 10 and not s[2]]
    assert out['gt_bboxes_labels'].tolist() == [LABEL[c] for _, c, _ in things]
    assert out['gt_ignore_flags'].tolist() == [False] * len(things)
    boxes = []
    for seg_id, _, _ in things:
        ys, xs = np.nonzero(pan == seg_id)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    assert out['gt_bboxes'].tensor.reshape(-1, 4).tolist() == boxes
    masks = [(pan == seg_id) for seg_id, _, _ in things]
    assert out['gt_masks'].masks.shape == (len(masks), ) + pan.shape
    assert all(np.array_equal(m.astype(bool), e) for m, e in zip(out['gt_masks'].masks, masks))
    semantic = np.full(pan.shape, 255)
    for seg_id, category, _ in segments:
        semantic[pan == seg_id] = LABEL[category]
    assert np.array_equal(out['gt_seg_map'], semantic)


@pytest.mark.parametrize('dataset_type', ['M2FCocoPanopticDataset', 'M2FPanopticDataset'])
@pytest.mark.parametrize('fault', list(FAULTS))  # each fault every run, not only when drawn
@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(first=scenes(), second=scenes(), repeat=st.integers(0, 5))
def test_every_sample_loads_exactly_or_is_reported_and_refused(dataset_type, fault, first, second, repeat):
    init_default_scope('mmdet')
    kind = FAULTS[fault]
    if fault == 'string image id' and dataset_type == 'M2FPanopticDataset':
        kind = None  # ADE20K / Cityscapes name their images by strings
    with tempfile.TemporaryDirectory() as tmp:
        root = osp.join(tmp, 'data', 'root')
        written = _write(root, (first, second), fault, repeat)
        first_id = written['images'][0]['id']
        first_name = written['images'][0]['file_name']
        expected = {str(IMAGE_IDS[0]): first, str(IMAGE_IDS[1]): second}

        # check_dataset lists exactly the fault, under the first image's id
        dataset, problems = CHECK_DATASET.build_dataset(_dataset_cfg(root, dataset_type), 'train')
        problems += check_indices(dataset, range(len(dataset)), 'train', num_classes=4)
        assert [(str(p.img_id), p.kind) for p in problems] == ([(str(first_id), kind)] if kind else []), problems
        assert all(p.fix and osp.basename(p.file) == osp.basename(first_name) for p in problems)

        # the loader refuses it with one line, in the file or when the sample is loaded
        refused_at_load = kind == 'image size differs from annotation'
        if kind and not refused_at_load:
            with pytest.raises(M2FBadSampleError) as err:
                DATASETS.build(_dataset_cfg(root, dataset_type))
            assert '\n' not in str(err.value) and 'Fix: ' in str(err.value)
            assert f'{osp.basename(first_name)} (image id {first_id})' in str(err.value)

        # what does load is exactly what the annotation describes; the faulty image is left out or refused
        dataset = DATASETS.build(_dataset_cfg(root, dataset_type, bad_annotations='skip'))
        loaded = {}
        for index in range(len(dataset)):
            img_id = dataset.get_data_info(index)['img_id']
            if refused_at_load and img_id == first_id:
                with pytest.raises(AnnotationMismatchError, match='decodes to'):
                    dataset[index]
                continue
            loaded[str(img_id)] = dataset[index]
        left_out = set(expected) if fault == 'duplicate image id' else {str(IMAGE_IDS[0])} if kind else set()
        assert set(loaded) == set(expected) - left_out
        for img_id, out in loaded.items():
            _assert_exact_targets(out, *expected[img_id])
        if fault == 'path outside the data root':  # allowed on purpose: the same targets
            out = DATASETS.build(_dataset_cfg(root, dataset_type, allow_outside_data_root=True))[0]
            _assert_exact_targets(out, *first)
