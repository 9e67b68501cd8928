"""Result files in COCO / mmseg formats, from hand-made predictions."""
import json

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from PIL import Image
from pycocotools import mask as mask_utils

from m2f_mm.apis.results import ResultWriter, mask_bbox, panoptic_to_coco, semantic_png

OFFSET = 1000


def test_mask_bbox_is_coco_xywh():
    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:9] = True
    assert mask_bbox(mask) == [3.0, 2.0, 6.0, 3.0]
    assert mask_bbox(np.zeros((4, 4), bool)) == [0.0, 0.0, 0.0, 0.0]


def test_panoptic_to_coco_ids_areas_and_void():
    pan = np.full((4, 6), 3, np.int64)            # 3 classes: VOID = 3
    pan[:, :2] = 2                                # stuff 'c'
    pan[:2, 2:4] = 0 + 1 * OFFSET                 # thing 'a' instance 1
    pan[2:, 2:4] = 0                              # class 0, instance 0: must not become VOID (id 0)
    rgb, segments = panoptic_to_coco(pan, num_classes=3, num_things=2)
    rgb = rgb.astype(np.int64)
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    assert (ids[:, 4:] == 0).all()                # VOID
    by_id = {s['id']: s for s in segments}
    assert set(by_id) == set(np.unique(ids)) - {0} and len(by_id) == 3
    for seg_id, seg in by_id.items():
        assert seg['area'] == (ids == seg_id).sum()
        assert seg['isthing'] == int(seg['category_id'] < 2)
    assert sorted(s['category_id'] for s in segments) == [0, 0, 2]
    assert sorted(s['bbox'] for s in segments if s['category_id'] == 2) == [[0.0, 0.0, 2.0, 4.0]]


def test_semantic_png_8_and_16_bit():
    sem = np.array([[0, 1], [5, -1]])
    assert np.array(semantic_png(sem, 3)).tolist() == [[0, 1], [255, 255]]
    wide = semantic_png(np.array([[300, 0]]), 400)
    assert np.array(wide).tolist() == [[300, 0]] and np.array(wide).dtype == np.uint16


def _sample(h=6, w=8):
    sample = DetDataSample(metainfo=dict(img_path='/x/img1.jpg', ori_shape=(h, w)))
    pan = torch.full((1, h, w), 3)
    pan[0, :3, :3] = 1 * OFFSET + 1
    sample.pred_panoptic_seg = PixelData(sem_seg=pan)
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    masks[0, :2, :2], masks[1, 4:, 5:] = True, True
    sample.pred_instances = InstanceData(masks=masks, labels=torch.tensor([1, 0]), scores=torch.tensor([0.9, 0.2]),
                                         bboxes=torch.zeros(2, 4))
    sample.pred_sem_seg = PixelData(sem_seg=torch.full((1, h, w), 2))
    return sample


def test_writer_files_round_trip(tmp_path):
    writer = ResultWriter(str(tmp_path), ['a', 'b', 'c'], num_things=2)
    written = writer.add(_sample(), 'img1')
    paths = writer.close()
    assert set(written) == {'panoptic', 'instance', 'semantic'}
    assert sorted(p.split('/')[-1] for p in paths) == ['images.json', 'instances.json', 'panoptic.json']
    pan = json.loads((tmp_path / 'panoptic.json').read_text())
    assert pan['images'] == [dict(id=0, file_name='img1.jpg', height=6, width=8)]
    assert pan['categories'][2] == dict(id=2, name='c', isthing=0)
    [seg] = pan['annotations'][0]['segments_info']
    assert seg['category_id'] == 1 and seg['area'] == 9 and seg['bbox'] == [0.0, 0.0, 3.0, 3.0]
    instances = json.loads((tmp_path / 'instances.json').read_text())
    assert [i['category_id'] for i in instances] == [1, 0] and abs(instances[0]['score'] - 0.9) < 1e-6
    assert mask_utils.decode(instances[1]['segmentation']).sum() == 2 * 3
    assert instances[1]['bbox'] == [5.0, 4.0, 3.0, 2.0]
    assert (np.array(Image.open(tmp_path / 'semantic' / 'img1.png')) == 2).all()


def test_writer_writes_empty_instance_file_when_asked(tmp_path):
    sample = _sample()
    sample.pred_instances = sample.pred_instances[:0]
    writer = ResultWriter(str(tmp_path), ['a', 'b', 'c'])
    writer.add(sample, 'img1', tasks=['instance'])
    writer.close()
    assert json.loads((tmp_path / 'instances.json').read_text()) == []
    assert not (tmp_path / 'panoptic.json').exists() and not (tmp_path / 'semantic').exists()
