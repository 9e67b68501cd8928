"""Faults of a COCO panoptic file found on the raw JSON, before pycocotools' index hides them."""
import copy

import pytest

from m2f_mm.datasets.panoptic_json import (DUPLICATE_IMAGE, DUPLICATE_SEGMENT, MALFORMED, WRONG_TYPE,
                                           category_id_faults, integer_id, panoptic_file_faults)


def _file():
    """Three images (ids 1, 2, 3), one annotation entry each."""
    seg = lambda i, c: dict(id=i, category_id=c, iscrowd=0, bbox=[0, 0, 2, 2], area=4)  # noqa: E731
    return dict(images=[dict(id=k, file_name=f'{k}.jpg', height=4, width=4) for k in (1, 2, 3)],
                annotations=[dict(image_id=k, file_name=f'{k}.png', segments_info=[seg(10 * k, 1), seg(10 * k + 1, 2)])
                             for k in (1, 2, 3)],
                categories=[dict(id=1, name='a', isthing=1), dict(id=2, name='b', isthing=0)])


def _kept(clean):
    return [img['id'] for img in clean['images']], [ann['image_id'] for ann in clean['annotations']]


def test_integer_id():
    assert [integer_id(v) for v in (5, 5.0, 0, -3)] == [5, 5, 0, -3]
    assert [integer_id(v) for v in ('5', True, False, 5.5, None, [5])] == [None] * 6


def test_clean_file_has_no_faults_and_is_kept_whole():
    data = _file()
    faults, clean = panoptic_file_faults(copy.deepcopy(data))
    assert faults == [] and clean == data


def test_duplicate_image_id_drops_every_entry_of_it():
    data = _file()
    data['images'][1]['id'] = 1  # 2.jpg now claims id 1; pycocotools would keep only 2.jpg
    faults, clean = panoptic_file_faults(data)
    assert [(f.file, f.img_id, f.kind) for f in faults] == [('1.jpg', 1, DUPLICATE_IMAGE)]
    assert '2 image entries have id 1 (1.jpg, 2.jpg)' in faults[0].detail
    assert _kept(clean) == ([3], [2, 3])  # the orphan annotation of id 2 names no image: it is never read


def test_two_annotation_entries_for_one_image():
    data = _file()
    data['annotations'][1]['image_id'] = 1
    faults, clean = panoptic_file_faults(data)
    assert [(f.file, f.img_id, f.kind) for f in faults] == [('1.jpg', 1, DUPLICATE_IMAGE)]
    assert 'PNGs 1.png, 2.png' in faults[0].detail
    assert _kept(clean) == ([2, 3], [3])


def test_duplicate_segment_id():
    data = _file()
    data['annotations'][2]['segments_info'].append(dict(data['annotations'][2]['segments_info'][0]))
    faults, clean = panoptic_file_faults(data)
    assert [(f.file, f.img_id, f.kind) for f in faults] == [('3.jpg', 3, DUPLICATE_SEGMENT)]
    assert faults[0].detail == 'segments_info lists segment id 30 (2 times)'
    assert _kept(clean) == ([1, 2], [1, 2])


@pytest.mark.parametrize('where,value,text', [
    ('category_id', '1', "category_id '1' (a JSON str)"),
    ('category_id', True, 'category_id True (a JSON boolean)'),
    ('category_id', 1.5, 'category_id 1.5 (a JSON float)'),
    ('id', '20', "segment id '20' (a JSON str)"),
    ('id', 20.5, 'segment id 20.5 (a JSON float)'),
    ('id', False, 'segment id False (a JSON boolean)'),
])
def test_segment_ids_of_the_wrong_type(where, value, text):
    data = _file()
    data['annotations'][1]['segments_info'][0][where] = value
    faults, clean = panoptic_file_faults(data)
    assert [(f.file, f.img_id, f.kind) for f in faults] == [('2.jpg', 2, WRONG_TYPE)]
    assert text in faults[0].detail
    assert _kept(clean) == ([1, 3], [1, 3])


def test_integral_floats_become_ints():
    data = _file()
    data['images'][0]['id'] = 1.0
    data['annotations'][0]['image_id'] = 1.0
    data['annotations'][0]['segments_info'][0].update(id=10.0, category_id=1.0)
    faults, clean = panoptic_file_faults(data)
    seg = clean['annotations'][0]['segments_info'][0]
    assert faults == [] and _kept(clean) == ([1, 2, 3], [1, 2, 3])
    assert type(clean['images'][0]['id']) is type(seg['id']) is type(seg['category_id']) is int


def test_string_image_ids_only_where_the_dataset_takes_them():
    data = _file()
    data['images'][0]['id'] = data['annotations'][0]['image_id'] = 'ADE_1'
    faults, clean = panoptic_file_faults(copy.deepcopy(data))
    assert [(f.file, f.img_id, f.kind) for f in faults] == [('1.jpg', 'ADE_1', WRONG_TYPE)]  # once, not per entry
    assert "image id 'ADE_1' (a JSON str); image ids must be integers" in faults[0].detail
    assert _kept(clean) == ([2, 3], [2, 3])
    faults, clean = panoptic_file_faults(data, string_image_ids=True)
    assert faults == [] and _kept(clean) == (['ADE_1', 2, 3], ['ADE_1', 2, 3])


def test_annotation_image_id_written_as_a_string_names_its_image():
    data = _file()
    data['annotations'][1]['image_id'] = '2'  # images[] says 2
    faults, clean = panoptic_file_faults(data)
    assert [(f.file, f.img_id, f.kind, f.folder) for f in faults] == [('2.jpg', '2', WRONG_TYPE, 'img')]
    assert _kept(clean) == ([1, 3], [1, 3])


def test_malformed_entries():
    data = _file()
    del data['images'][0]['file_name']
    data['annotations'][2]['segments_info'] = None
    faults, clean = panoptic_file_faults(data)
    assert [(f.img_id, f.kind) for f in faults] == [(1, MALFORMED), (3, MALFORMED)]
    assert faults[0].file == 'None' and (faults[1].file, faults[1].folder) == ('3.jpg', 'img')
    assert _kept(clean) == ([2], [2])


def test_category_ids_of_the_wrong_type():
    data = _file()
    assert category_id_faults(data) == []
    data['categories'][1]['id'] = '2'
    assert category_id_faults(data) == ["category 'b' has id '2' (a JSON str); category ids must be integers"]
