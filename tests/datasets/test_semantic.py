"""M2FLoadSegAnnotations: mmseg's label loading, refusing a label PNG whose size differs from its image."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from m2f_mm.datasets.panoptic import AnnotationMismatchError
from m2f_mm.registry import DATASETS


def _data(tmp_path, label_hw):
    for folder in ('img', 'ann'):
        (tmp_path / folder).mkdir(exist_ok=True)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / 'img' / 'a.jpg')
    label = np.arange(label_hw[0] * label_hw[1], dtype=np.uint8).reshape(label_hw) % 3
    Image.fromarray(label).save(tmp_path / 'ann' / 'a.png')
    return label


def _sample(tmp_path, loader):
    init_default_scope('mmseg')
    return DATASETS.build(dict(type='BaseSegDataset', data_root=str(tmp_path), img_suffix='.jpg', seg_map_suffix='.png',
                               data_prefix=dict(img_path='img', seg_map_path='ann'),
                               metainfo=dict(classes=('a', 'b', 'c')),
                               pipeline=[dict(type='LoadImageFromFile'), dict(type=loader)]))[0]


def test_same_label_map_as_mmseg_when_sizes_agree(tmp_path):
    label = _data(tmp_path, (6, 8))
    ours, theirs = _sample(tmp_path, 'M2FLoadSegAnnotations'), _sample(tmp_path, 'LoadAnnotations')
    assert np.array_equal(ours['gt_seg_map'], label) and np.array_equal(theirs['gt_seg_map'], label)
    assert sorted(ours) == sorted(theirs)


def test_label_png_of_another_size_is_refused(tmp_path):
    _data(tmp_path, (4, 4))
    assert _sample(tmp_path, 'LoadAnnotations')['gt_seg_map'].shape == (4, 4)  # mmseg: loaded as it is
    with pytest.raises(AnnotationMismatchError, match=r"label PNG '.*ann/a\.png' is 4x4 but its image '.*img/a\.jpg' "
                                                      r'decodes to 6x8 \(HxW\); fix: re-export') as err:
        _sample(tmp_path, 'M2FLoadSegAnnotations')
    assert err.value.kind == 'image size differs from annotation'
