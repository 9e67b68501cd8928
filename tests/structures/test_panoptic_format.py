"""The COCO panoptic format: id <-> RGB encoding, both PNG readers, the semantic map and prediction segments,
on hand-computed values."""
import numpy as np
import pytest
from PIL import Image

from m2f_mm.structures.panoptic_format import (INSTANCE_OFFSET, VOID, id2rgb, load_panoptic_png, panoptic_semantic_map,
                                               prediction_segments, read_panoptic_ids, rgb2id)


def test_instance_offset_is_mmdets():
    from mmdet.evaluation.functional import INSTANCE_OFFSET as mmdet_offset
    assert INSTANCE_OFFSET == mmdet_offset and VOID == 0


def test_id_encoding_round_trips():
    ids = np.array([[0, 1, 255], [256, 65536, 1_300_000]], np.int64)
    rgb = id2rgb(ids)
    assert rgb.dtype == np.uint8 and rgb[1, 1].tolist() == [0, 0, 1] and rgb[0, 2].tolist() == [255, 0, 0]
    assert np.array_equal(rgb2id(rgb), ids) and rgb2id(rgb).dtype == np.int64
    assert rgb2id(np.array([1, 2, 3], np.int32)) == 1 + 2 * 256 + 3 * 65536


def test_png_readers_give_the_ids_and_name_a_bad_file(tmp_path):
    ids = np.array([[0, 1, 256], [65536, 16777215, 5]])
    Image.fromarray(id2rgb(ids)).save(tmp_path / 'a.png')
    assert np.array_equal(load_panoptic_png(str(tmp_path / 'a.png')), ids)
    read = read_panoptic_ids(str(tmp_path / 'a.png'), image_id=7)
    assert read.dtype == np.int32 and np.array_equal(read, ids)
    (tmp_path / 'bad.png').write_bytes(b'not a png')
    with pytest.raises(ValueError, match='bad.png'):
        load_panoptic_png(str(tmp_path / 'bad.png'))
    with pytest.raises(ValueError, match=r"cannot read panoptic PNG '.*bad.png' of image id 7"):
        read_panoptic_ids(str(tmp_path / 'bad.png'), image_id=7)
    with pytest.raises(ValueError, match=r"cannot read panoptic PNG '.*missing.png' of image id 8"):
        read_panoptic_ids(str(tmp_path / 'missing.png'), image_id=8)


def test_semantic_map_lists_categories_and_ignores_the_rest():
    pan = np.array([[0, 5, 5], [9, 9, 12]], np.int32)
    # 12 is in the PNG but not listed, 7 is listed but absent; 9 is listed twice: the last category wins
    sem = panoptic_semantic_map(pan, [5, 9, 7, 9], [3, 1, 4, 2], ignore_index=255)
    assert sem.dtype == np.int32 and sem.tolist() == [[255, 3, 3], [2, 2, 255]]
    assert panoptic_semantic_map(pan, [], []).tolist() == [[255] * 3] * 2


def test_prediction_segments_void_areas_and_class_zero():
    pan = np.array([[3, 3, 2], [0, INSTANCE_OFFSET, INSTANCE_OFFSET]], np.int64)  # 3 classes: VOID = 3
    ids, segments = prediction_segments(pan, num_classes=3)
    # class 0 instance 0 (id 0) is moved past the largest id, so it is not taken for VOID
    assert ids.tolist() == [[0, 0, 2], [2 * INSTANCE_OFFSET, 1000, 1000]]
    assert segments == [dict(id=2, category_id=2, area=1), dict(id=1000, category_id=0, area=2),
                        dict(id=2000, category_id=0, area=1)]
    ids, segments = prediction_segments(pan, 3, label2cat={0: 10, 1: 11, 2: 12}, ignore_index=2)
    assert ids[0, 2] == 0 and [s['category_id'] for s in segments] == [10, 10]
