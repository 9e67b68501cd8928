"""tools/test.py: --show-dir for an mmdet and an mmseg config, mmseg's --out DIR, and --tta (mmseg)."""
import glob
import json
import os.path as osp

import numpy as np
from PIL import Image

from .conftest import PANOPTIC, SEMANTIC, data_options, run_tool


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
