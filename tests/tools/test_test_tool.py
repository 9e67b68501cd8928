"""tools/test.py: --show-dir for an mmdet and an mmseg config, mmseg's --out DIR, and --tta (mmseg)."""
import pytest
import glob
import json
import os.path as osp

import numpy as np
from PIL import Image

from .conftest import PANOPTIC, SEMANTIC, data_options, run_tool

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


def _metrics(work_dir):
    files = glob.glob(osp.join(work_dir, '*', '*.json'))
    assert len(files) == 1, files
    return json.loads(open(files[0]).read())


def test_mmdet_config_show_dir_draws_even_empty_panoptic_maps(tiny, tmp_path):
    work = tmp_path / 'work'
    run_tool(['tools/test.py', PANOPTIC, tiny['panoptic']['untrained'], '--work-dir', work, '--show-dir', 'shown',
              '--out', tmp_path / 'preds.pkl', '--cfg-options'] + data_options(PANOPTIC, tiny['data']))
    drawn = sorted(glob.glob(str(work / '*' / 'shown' / '*.jpg')))
    assert [osp.basename(p) for p in drawn] == [osp.basename(p) for p in tiny['val_images']]
    assert Image.open(drawn[0]).size == (2 * 64, 64)  # ground truth | prediction
    assert (tmp_path / 'preds.pkl').stat().st_size > 0  # mmdet's meaning of --out: a pickle
    assert _metrics(work)['coco_panoptic/PQ'] == 0.0  # all VOID, and still evaluated


def test_mmseg_config_show_dir_and_out_dir(tiny, tmp_path):
    work, shown, out = tmp_path / 'work', tmp_path / 'shown', tmp_path / 'labels'
    run_tool(['tools/test.py', SEMANTIC, tiny['semantic']['trained'], '--work-dir', work, '--show-dir', shown,
              '--out', out, '--cfg-options', 'default_hooks.visualization.interval=1']
             + data_options(SEMANTIC, tiny['data']))
    drawn = sorted(glob.glob(str(shown / 'vis_data' / 'vis_image' / '*.png')))
    assert len(drawn) == len(tiny['val_images'])
    names = sorted(osp.basename(p)[:-4] + '.png' for p in tiny['val_images'])
    assert sorted(p.name for p in out.iterdir()) == names  # mmseg's meaning of --out: label PNGs
    labels = np.array(Image.open(out / names[0]))
    assert labels.shape == (64, 64) and labels.max() < 7
    assert 0 <= _metrics(work)['mIoU'] <= 100


def test_mmseg_tta_runs_flip_and_scales(tiny, tmp_path):
    work = tmp_path / 'work'
    result = run_tool(['tools/test.py', SEMANTIC, tiny['semantic']['trained'], '--work-dir', work, '--tta',
                       '--cfg-options'] + data_options(SEMANTIC, tiny['data']))
    dumped = open(work / osp.basename(SEMANTIC)).read()
    assert "type='SegTTAModel'" in dumped and "type='TestTimeAug'" in dumped
    assert 0 <= _metrics(work)['mIoU'] <= 100
    assert 'Iter(test)' in result.stdout + result.stderr


def test_tta_refused_for_mmdet_configs_with_the_reason(tiny, tmp_path):
    result = run_tool(['tools/test.py', PANOPTIC, tiny['panoptic']['trained'], '--tta'], check=False)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert '--tta works with the mmseg (semantic) configs' in result.stderr


def test_ade20k_config_flags_become_mmseg_settings(tmp_path):
    """The paper's ADE20K config: --show-dir / --out / --tta turn into what mmseg's tools/test.py sets."""
    import argparse

    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from .conftest import REPO, load_tool
    test_tool = load_tool('tools/test.py')
    from m2f_mm.config import resolve_config
    cfg = Config.fromfile(osp.join(REPO, 'configs/m2f_r50_8xb2-160k_ade20k-512x512.py'))
    resolve_config(cfg, 'test')  # as tools/test.py does first
    args = argparse.Namespace(show=False, show_dir=str(tmp_path / 'vis'), wait_time=2, out=str(tmp_path / 'preds'))
    test_tool.apply_show_args(cfg, args)
    assert test_tool.apply_out_arg(cfg, args) is None
    test_tool.apply_tta(cfg)
    assert cfg.visualizer.save_dir == args.show_dir and 'test_out_dir' not in cfg.default_hooks.visualization
    assert cfg.test_evaluator.output_dir == args.out and cfg.test_evaluator.keep_results
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module.decode_head.type == 'M2FSegHead'
    augs = cfg.test_dataloader.dataset.pipeline[1]['transforms']
    assert len(augs[0]) == 6 and len(augs[1]) == 2  # 6 scales x 2 flips, mmseg's ADE20K TTA
    init_default_scope('mmseg')
    cfg.model.module.backbone.init_cfg = None
    assert type(MODELS.build(cfg.model)).__name__ == 'SegTTAModel'

