"""panoptic_to_instances: the instances JSON of a panoptic dataset equals the one its writer made independently."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from m2f_mm.datasets.convert import ConversionError
from m2f_mm.datasets.convert.panoptic_to_instances import convert

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, TESTS)
from own_dataset import write_coco_panoptic  # noqa: E402


def _masks(instances: dict) -> dict:
    """(image id, category) -> sorted list of the masks' pixel index sets."""
    out = {}
    for ann in instances['annotations']:
        rle = ann['segmentation']
        if isinstance(rle['counts'], list):
            rle = mask_utils.frPyObjects(rle, *rle['size'])
        mask = mask_utils.decode(rle).astype(bool)
        out.setdefault((ann['image_id'], ann['category_id']), []).append(tuple(np.flatnonzero(mask)))
    return {k: sorted(v) for k, v in out.items()}


def test_instances_from_panoptic_equal_the_writers_own(tmp_path):
    root = write_coco_panoptic(str(tmp_path / 'coins'), num_train=1, num_val=3, size=48, seed=4)
    written = json.load(open(osp.join(root, 'annotations', 'instances_val.json')))
    out = str(tmp_path / 'instances_val.json')
    counts = convert(osp.join(root, 'annotations', 'panoptic_val.json'), osp.join(root, 'annotations', 'panoptic_val'),
                     out)
    converted = json.load(open(out))
    assert counts == dict(images=3, instances=len(written['annotations']), crowd=0)
    assert _masks(converted) == _masks(written)
    assert [c['name'] for c in converted['categories']] == ['coin']  # things only
    assert {a['image_id'] for a in converted['annotations']} <= {i['id'] for i in converted['images']}
    by_id = {a['id']: a for a in converted['annotations']}
    assert all(a['area'] == sum(len(m) for m in [np.flatnonzero(mask_utils.decode(a['segmentation']))])
               for a in by_id.values())


def test_a_segment_missing_from_its_png_is_named(tmp_path):
    root = write_coco_panoptic(str(tmp_path / 'coins'), num_train=1, num_val=1, size=32, seed=1)
    path = osp.join(root, 'annotations', 'panoptic_val.json')
    data = json.load(open(path))
    data['annotations'][0]['segments_info'].append(dict(id=4242, category_id=3, iscrowd=0))
    json.dump(data, open(path, 'w'))
    with pytest.raises(ConversionError, match='segment 4242 of image id 101 is not in coins_val_000.png'):
        convert(path, osp.join(root, 'annotations', 'panoptic_val'), str(tmp_path / 'out.json'))


@pytest.mark.slow
def test_the_tool_writes_beside_the_panoptic_file(tmp_path, tools):
    import os
    root = write_coco_panoptic(str(tmp_path / 'coins'), num_train=1, num_val=2, size=32, seed=2)
    os.remove(osp.join(root, 'annotations', 'instances_val.json'))
    result = tools.run(['tools/dataset_converters/panoptic_to_instances.py',
                        osp.join(root, 'annotations', 'panoptic_val.json')])
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'wrote {root}/annotations/instances_val.json: images 2' in result.stdout
    bad = tools.run(['tools/dataset_converters/panoptic_to_instances.py', osp.join(root, 'train')])
    assert bad.returncode == 1 and bad.stderr.startswith('m2f_mm: cannot read panoptic annotation file')
