"""mmdet's DetInferencer, m2f_mm's M2FDetInferencer and mmseg's MMSegInferencer with m2f_mm's configs."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from .conftest import PANOPTIC, REPO, SEMANTIC

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


@pytest.mark.parametrize('state', ['trained', 'untrained'])
def test_det_inferencer_draws_our_panoptic_config(tiny, tmp_path, state):
    from mmdet.apis import DetInferencer

    from m2f_mm.checkpoints import safe_local_loading
    with safe_local_loading():  # model=None: the config the checkpoint was trained with
        inferencer = DetInferencer(model=None, weights=tiny['panoptic'][state], device='cpu')
    image = tiny['val_images'][0]
    result = inferencer(image, out_dir=str(tmp_path), return_datasamples=True)
    sample = result['predictions'][0]
    pan = sample.pred_panoptic_seg.sem_seg
    if state == 'untrained':
        assert (pan == 7).all()  # all VOID: mmdet's own visualizer would fail in np.stack here
    assert sample.pred_sem_seg.sem_seg.shape[-2:] == (64, 64)
    picture = np.array(Image.open(tmp_path / 'vis' / osp.basename(image)))
    assert picture.shape == (64, 64, 3)
    assert result['visualization'][0].shape == (64, 64, 3)


def test_m2f_det_inferencer_saves_coco_panoptic_without_panopticapi(tiny, tmp_path):
    from m2f_mm.apis import M2FDetInferencer
    inferencer = M2FDetInferencer(model=osp.join(REPO, PANOPTIC), weights=tiny['panoptic']['trained'], device='cpu')
    image = tiny['val_images'][0]
    in_memory = inferencer(image)['predictions'][0]
    saved = inferencer(image, out_dir=str(tmp_path), no_save_pred=False)['predictions'][0]
    name = osp.splitext(osp.basename(image))[0]
    rgb = np.array(Image.open(tmp_path / 'preds' / f'{name}_panoptic_seg.png')).astype(np.int64)
    assert np.array_equal(rgb, in_memory['panoptic_seg'])
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    on_disk = json.loads((tmp_path / 'preds' / f'{name}.json').read_text())
    assert on_disk['segments_info'] == saved['segments_info'] == in_memory['segments_info']
    assert {s['id'] for s in on_disk['segments_info']} == set(np.unique(ids)) - {0}
    assert len(on_disk['labels']) == len(on_disk['masks'])  # mmdet's own instance fields are kept


def test_m2f_det_inferencer_uses_the_config_classes_without_checkpoint_meta(tiny, tmp_path):
    import torch

    from m2f_mm.apis import M2FDetInferencer
    bare = tmp_path / 'bare.pth'
    torch.save({'state_dict': torch.load(tiny['panoptic']['untrained'])['state_dict']}, bare)
    inferencer = M2FDetInferencer(model=osp.join(REPO, PANOPTIC), weights=str(bare), device='cpu')
    assert list(inferencer.model.dataset_meta['classes'])[:2] == ['circle', 'square']  # mmdet would say COCO


@pytest.mark.parametrize('state', ['trained', 'untrained'])
def test_mmseg_inferencer_with_our_semantic_config(tiny, tmp_path, state):
    from mmseg.apis import MMSegInferencer

    from m2f_mm.checkpoints import safe_local_loading
    with safe_local_loading():  # model=None: the config the checkpoint was trained with
        inferencer = MMSegInferencer(model=None, weights=tiny['semantic'][state], device='cpu')
    image = tiny['val_images'][0]
    sample = inferencer(image, return_datasamples=True)
    sem = sample.pred_sem_seg.data
    assert sem.shape == (1, 64, 64) and 0 <= int(sem.min()) and int(sem.max()) < 7
    result = inferencer(image, out_dir=str(tmp_path))
    assert np.array_equal(result['predictions'], sem[0].numpy())
    assert np.array(Image.open(tmp_path / 'vis' / osp.basename(image))).shape == (64, 64, 3)
    label_png = np.array(Image.open(tmp_path / 'pred' / '00000000_pred.png'))
    assert np.array_equal(label_png, sem[0].numpy())


def test_mmdet_inferencer_with_a_config_that_leaves_classes_to_the_data_names_the_fix(tiny):
    from mmdet.apis import DetInferencer

    from m2f_mm.checkpoints import safe_local_loading
    from m2f_mm.errors import M2FConfigError
    with safe_local_loading(), pytest.raises(M2FConfigError) as err:
        DetInferencer(model=osp.join(REPO, PANOPTIC), weights=tiny['panoptic']['trained'], device='cpu')
    assert 'panoptic_head.num_things_classes / num_stuff_classes is None' in str(err.value)
    assert 'model=None to an inferencer' in str(err.value)


def test_m2f_det_inferencer_takes_the_checkpoint_classes_with_a_repository_config(tiny):
    from m2f_mm.apis import M2FDetInferencer
    inferencer = M2FDetInferencer(model=osp.join(REPO, 'configs', 'm2f_r50_8xb2-lsj-50e_coco-panoptic.py'),
                                  weights=None, device='cpu')
    assert inferencer.model.panoptic_head.num_classes == 133  # no checkpoint: COCO's classes (the config's data)
    inferencer = M2FDetInferencer(model=None, weights=tiny['panoptic']['trained'], device='cpu')
    assert inferencer.model.panoptic_head.num_classes == 7
    assert list(inferencer.model.dataset_meta['classes'])[:2] == ['circle', 'square']
