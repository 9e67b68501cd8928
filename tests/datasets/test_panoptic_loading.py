"""Panoptic loading without panopticapi: same output as mmdet's LoadPanopticAnnotations, clear errors."""
import json
import sys
import types

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from m2f_mm.datasets.panoptic import M2FLoadPanopticAnnotations
from m2f_mm.structures.panoptic_format import id2rgb
from m2f_mm.registry import DATASETS

H, W = 6, 8
META = dict(classes=('a', 'b', 'sky'), thing_classes=('a', 'b'), stuff_classes=('sky', ))
CATEGORIES = [dict(id=3, name='a', isthing=1), dict(id=5, name='b', isthing=1), dict(id=20, name='sky', isthing=0)]


def _scene():
    pan = np.full((H, W), 4000)            # stuff 'sky'
    pan[0:2, 0:3] = 1000                   # thing 'a'
    pan[3:6, 5:8] = 2000                   # thing 'b'
    pan[4:6, 0:2] = 3000                   # crowd 'b'
    pan[0, 7] = 0                          # VOID
    pan[2, 4] = 5000                       # 1-px thing whose JSON box is < 1 px wide: mmdet drops it
    segs = [dict(id=1000, category_id=3, iscrowd=0, bbox=[0, 0, 3, 2], area=6),
            dict(id=2000, category_id=5, iscrowd=0, bbox=[5, 3, 3, 3], area=9),
            dict(id=3000, category_id=5, iscrowd=1, bbox=[0, 4, 2, 2], area=4),
            dict(id=4000, category_id=20, iscrowd=0, bbox=[0, 0, 8, 6], area=27),
            dict(id=5000, category_id=3, iscrowd=0, bbox=[4, 2, 0.5, 1], area=1)]
    return pan, segs


def _write(tmp_path, pan, segs, png_bytes=None, image_hw=(H, W)):
    (tmp_path / 'img').mkdir(exist_ok=True)
    (tmp_path / 'pan').mkdir(exist_ok=True)
    Image.fromarray(np.zeros(image_hw + (3, ), np.uint8)).save(tmp_path / 'img' / 'x.jpg')
    if png_bytes is None:
        Image.fromarray(id2rgb(pan)).save(tmp_path / 'pan' / 'x.png')
    else:
        (tmp_path / 'pan' / 'x.png').write_bytes(png_bytes)
    ann = dict(images=[dict(id=7, file_name='x.jpg', height=image_hw[0], width=image_hw[1])],
               annotations=[dict(image_id=7, file_name='x.png', segments_info=segs)], categories=CATEGORIES)
    (tmp_path / 'ann.json').write_text(json.dumps(ann))


def _dataset(tmp_path, transform, dataset_type='M2FCocoPanopticDataset'):
    init_default_scope('mmdet')
    return DATASETS.build(dict(type=dataset_type, data_root=str(tmp_path), ann_file='ann.json', metainfo=META,
                               data_prefix=dict(img='img/', seg='pan/'), test_mode=True,
                               pipeline=[dict(type='LoadImageFromFile'), transform]))


def _panopticapi_stub(monkeypatch):
    """mmdet's LoadPanopticAnnotations only needs panopticapi.utils.rgb2id; this is panopticapi's."""
    def rgb2id(color):
        if color.dtype == np.uint8:
            color = color.astype(np.int32)
        return color[:, :, 0] + 256 * color[:, :, 1] + 256 * 256 * color[:, :, 2]
    pkg, utils = types.ModuleType('panopticapi'), types.ModuleType('panopticapi.utils')
    utils.rgb2id, pkg.utils = rgb2id, utils
    monkeypatch.setitem(sys.modules, 'panopticapi', pkg)
    monkeypatch.setitem(sys.modules, 'panopticapi.utils', utils)


def test_same_output_as_mmdet_load_panoptic_annotations(tmp_path, monkeypatch):
    _write(tmp_path, *_scene())
    ours = _dataset(tmp_path, dict(type='M2FLoadPanopticAnnotations'))[0]
    _panopticapi_stub(monkeypatch)
    theirs = _dataset(tmp_path, dict(type='LoadPanopticAnnotations'), 'CocoPanopticDataset')[0]
    assert ours['gt_bboxes'].tensor.tolist() == theirs['gt_bboxes'].tensor.tolist() == [[0, 0, 3, 2], [5, 3, 8, 6]]
    assert ours['gt_bboxes_labels'].tolist() == theirs['gt_bboxes_labels'].tolist() == [0, 1]
    assert ours['gt_ignore_flags'].dtype == theirs['gt_ignore_flags'].dtype == bool
    assert np.array_equal(ours['gt_masks'].masks, theirs['gt_masks'].masks)
    assert ours['gt_masks'].masks.shape == (2, H, W) and ours['gt_masks'].masks.dtype == np.uint8
    assert ours['gt_seg_map'].dtype == theirs['gt_seg_map'].dtype
    assert np.array_equal(ours['gt_seg_map'], theirs['gt_seg_map'])
    seg = ours['gt_seg_map']
    assert seg[0, 0] == 0 and seg[3, 5] == 1 and seg[5, 0] == 1 and seg[2, 0] == 2  # crowd keeps class 'b'
    assert seg[0, 7] == 255 and seg[2, 4] == 255                                  # VOID, dropped segment
    assert ours['ignored_segment_ids'] == [5000]


def test_without_annotation_path_nothing_is_loaded():
    out = M2FLoadPanopticAnnotations(with_bbox=False, with_label=False)(dict(seg_map_path=None))
    assert 'gt_masks' not in out and 'gt_seg_map' not in out


def _error(tmp_path, pan, segs, match, **kw):
    _write(tmp_path, pan, segs, **kw)
    with pytest.raises(ValueError, match=match):
        _dataset(tmp_path, dict(type='M2FLoadPanopticAnnotations'))[0]


def test_png_id_missing_from_json(tmp_path):
    pan, segs = _scene()
    pan[5, 3] = 777
    _error(tmp_path, pan, segs, r"x\.png'? of image id 7 has segment ids \[777\]")


def test_json_id_missing_from_png(tmp_path):
    pan, segs = _scene()
    segs.append(dict(id=888, category_id=20, iscrowd=0, bbox=[0, 0, 2, 2], area=4))
    _error(tmp_path, pan, segs, r'image id 7 lists segment ids \[888\] that are not in .*x\.png')


def test_unknown_category(tmp_path):
    pan, segs = _scene()
    segs[1]['category_id'] = 99
    _error(tmp_path, pan, segs, r'x\.jpg \(image id 7\): segment id 2000 has category_id 99')


def test_png_size_differs_from_image_entry(tmp_path):
    pan, segs = _scene()
    _error(tmp_path, np.pad(pan, ((0, 0), (0, 1)), constant_values=4000), segs,
           r'x\.png.* of image id 7 is 6x9 \(HxW\) but its image entry says 6x8')


def test_corrupt_png(tmp_path):
    _error(tmp_path, *_scene(), match=r"cannot .*x\.png' of image id 7", png_bytes=b'\x89PNG broken')


def test_check_ids_off_accepts_mmdet_dataset_dropping_tiny_segments(tmp_path):
    _write(tmp_path, *_scene())
    with pytest.raises(ValueError, match=r'\[5000\]'):  # mmdet's dataset does not record the dropped id
        _dataset(tmp_path, dict(type='M2FLoadPanopticAnnotations'), 'CocoPanopticDataset')[0]
    out = _dataset(tmp_path, dict(type='M2FLoadPanopticAnnotations', check_ids=False), 'CocoPanopticDataset')[0]
    assert out['gt_seg_map'][2, 4] == 255


# -- faults that pycocotools' index or a lenient loader would turn into silently different targets ----------

def _refused(tmp_path, *texts, **dataset_args):
    """Building the dataset stops with one M2FBadSampleError line holding every text and the fix."""
    from m2f_mm.errors import M2FBadSampleError
    init_default_scope('mmdet')
    with pytest.raises(M2FBadSampleError) as err:
        DATASETS.build(dict(type='M2FCocoPanopticDataset', data_root=str(tmp_path), ann_file='ann.json', metainfo=META,
                            data_prefix=dict(img='img/', seg='pan/'), test_mode=True,
                            pipeline=[dict(type='LoadImageFromFile'), dict(type='M2FLoadPanopticAnnotations')],
                            **dataset_args))
    message = str(err.value)
    assert '\n' not in message and 'Fix: ' in message and 'check_dataset.py' in message, message
    for text in texts:
        assert text in message, message
    return message


def _edit_json(tmp_path, edit):
    ann = json.loads((tmp_path / 'ann.json').read_text())
    edit(ann)
    (tmp_path / 'ann.json').write_text(json.dumps(ann))


def test_duplicated_segment_is_refused_not_quadrupled(tmp_path, monkeypatch):
    pan, segs = _scene()
    _write(tmp_path, pan, segs + [dict(segs[0])])  # thing 1000 listed twice
    # mmdet's index looks the id up once per listing and gets both entries each time: 4 instances of it
    _panopticapi_stub(monkeypatch)
    theirs = _dataset(tmp_path, dict(type='LoadPanopticAnnotations'), 'CocoPanopticDataset')[0]
    assert sorted(theirs['gt_bboxes_labels'].tolist()) == [0, 0, 0, 0, 1]
    assert sum(int(m.sum()) for m in theirs['gt_masks'].masks) == 4 * 6 + 9
    _refused(tmp_path, 'x.jpg (image id 7)', 'segments_info lists segment id 1000 (2 times)',
             'give each segment of the image its own id')
    skipped = _dataset_with(tmp_path, bad_annotations='skip', serialize_data=False)
    assert len(skipped) == 0
    collected = _dataset_with(tmp_path, bad_annotations='collect', serialize_data=False)
    assert [(p['img_id'], p['kind']) for p in collected.annotation_problems] == [(7, 'duplicate segment id')]
    # the loading transform refuses a repeated listing on its own (any dataset class in front of it, id checks
    # on or off)
    for check_ids in (True, False):
        with pytest.raises(ValueError, match=r'image id 7 lists segment ids \[1000\] more than once'):
            _dataset(tmp_path, dict(type='M2FLoadPanopticAnnotations', check_ids=check_ids), 'CocoPanopticDataset')[0]


def _dataset_with(tmp_path, **dataset_args):
    init_default_scope('mmdet')
    return DATASETS.build(dict(type='M2FCocoPanopticDataset', data_root=str(tmp_path), ann_file='ann.json',
                               metainfo=META, data_prefix=dict(img='img/', seg='pan/'), test_mode=True,
                               pipeline=[dict(type='LoadImageFromFile'), dict(type='M2FLoadPanopticAnnotations')],
                               **dataset_args))


def test_duplicate_image_id_is_refused_not_dropped(tmp_path):
    _write(tmp_path, *_scene())

    def second_image_with_the_same_id(ann):
        ann['images'].append(dict(ann['images'][0], file_name='y.jpg'))
    _edit_json(tmp_path, second_image_with_the_same_id)
    _refused(tmp_path, 'x.jpg (image id 7)', '2 image entries have id 7 (x.jpg, y.jpg)')
    skipped = _dataset_with(tmp_path, bad_annotations='skip', serialize_data=False)
    assert len(skipped) == 0  # neither entry can be trusted


@pytest.mark.parametrize('field,value,text', [
    ('category_id', '5', "segment id 2000 has category_id '5' (a JSON str)"),
    ('category_id', True, 'category_id True (a JSON boolean)'),
    ('id', 2000.5, 'segment id 2000.5 (a JSON float)'),
])
def test_ids_of_the_wrong_type_are_refused(tmp_path, field, value, text):
    pan, segs = _scene()
    segs[1][field] = value
    _write(tmp_path, pan, segs)
    _refused(tmp_path, 'x.jpg (image id 7)', text, 'write image, segment and category ids as JSON integers')


def test_string_image_id_is_refused_for_coco(tmp_path):
    _write(tmp_path, *_scene())

    def string_id(ann):
        ann['images'][0]['id'] = ann['annotations'][0]['image_id'] = '7'
    _edit_json(tmp_path, string_id)
    _refused(tmp_path, "image id '7' (a JSON str); image ids must be integers")


def test_image_decoding_to_another_size_is_refused(tmp_path):
    from m2f_mm.datasets.panoptic import AnnotationMismatchError
    _write(tmp_path, *_scene(), image_hw=(1, 1))

    def json_says_png_size(ann):
        ann['images'][0].update(height=H, width=W)
    _edit_json(tmp_path, json_says_png_size)
    expected = (r"x\.jpg' of image id 7 decodes to 1x1 \(HxW\) but its annotation says 6x8 .* PNG .*x\.png' is 6x8; "
                r"fix: ")
    with pytest.raises(AnnotationMismatchError, match=expected + 're-export') as err:
        _dataset(tmp_path, dict(type='M2FLoadPanopticAnnotations'))[0]
    assert err.value.kind == 'image size differs from annotation'
    _write(tmp_path, *_scene(), image_hw=(W, H))  # a turned image: the JSON and the PNG agree with each other
    _edit_json(tmp_path, json_says_png_size)
    with pytest.raises(AnnotationMismatchError, match='turned by 90 degrees'):
        _dataset(tmp_path, dict(type='M2FLoadPanopticAnnotations'))[0]


def test_paths_outside_the_data_root_are_refused_unless_allowed(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    _write(root, *_scene())
    (tmp_path / 'x.jpg').write_bytes((root / 'img' / 'x.jpg').read_bytes())
    (tmp_path / 'x.png').write_bytes((root / 'pan' / 'x.png').read_bytes())

    def outside(ann):
        ann['images'][0]['file_name'] = '../../x.jpg'
    _edit_json(root, outside)
    message = _refused(root, "image file_name '../../x.jpg' leads to " + str(tmp_path / 'x.jpg'),
                       "PNG file_name '../../x.png'", 'allow_outside_data_root=True')
    assert message.count('outside ' + str(root)) == 2
    out = _dataset_with(root, allow_outside_data_root=True)[0]
    assert out['gt_bboxes_labels'].tolist() == [0, 1]

    def inside_the_root(ann):  # another folder of the same data root is fine
        ann['images'][0]['file_name'] = '../x.jpg'
    (root / 'x.jpg').write_bytes((root / 'img' / 'x.jpg').read_bytes())
    (root / 'x.png').write_bytes((root / 'pan' / 'x.png').read_bytes())
    _edit_json(root, inside_the_root)
    assert _dataset_with(root)[0]['img_path'].endswith('img/../x.jpg')
