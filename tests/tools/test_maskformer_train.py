"""`python tools/train.py configs/maskformer_r50_ms-16xb1-75e_coco-panoptic.py` builds and trains: the full R50
MaskFormer recipe (6-layer encoder, DETR multi-scale augmentation to 480-800 px) for one iteration and a
validation, on a small COCO-panoptic dataset written by tests/own_dataset.py (classes from its annotations)."""
import pytest
import os.path as osp
import subprocess
import sys

from own_dataset import write_coco_panoptic

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_train_py_trains_the_r50_maskformer_recipe(tmp_path):
    data = write_coco_panoptic(str(tmp_path / 'coins'), num_train=2, num_val=1)
    options = [f'data_root={data}/', 'train_cfg.max_iters=1', 'model.backbone.init_cfg=None',
               'default_hooks.logger.interval=1']
    for loader, split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        options += [f'{loader}_dataloader.dataset.ann_file=annotations/panoptic_{split}.json',
                    f'{loader}_dataloader.dataset.data_prefix.img={split}/',
                    f'{loader}_dataloader.dataset.data_prefix.seg=annotations/panoptic_{split}/',
                    f'{loader}_dataloader.num_workers=0', f'{loader}_dataloader.persistent_workers=False']
    result = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/maskformer_r50_ms-16xb1-75e_coco-panoptic.py', '--work-dir',
         str(tmp_path / 'work'), '--cfg-options'] + options, cwd=REPO, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert 'classes: 2 (1 thing: coin; 1 stuff: background)' in log
    assert 'loss_mask' in log and 'd5.loss_dice' not in log and 'd4.loss_dice' in log  # 6 supervised sets
    assert 'coco_panoptic/PQ' in log
    assert (tmp_path / 'work' / 'iter_1.pth').exists()
