"""The main job with MaskFormer's head (its own file: pytest-xdist then runs it beside the Mask2Former one)."""
import pytest
import json
import os.path as osp
import subprocess
import sys

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_quick_demo_runs_maskformer_on_the_same_benchmark(tmp_path):
    """The main job with MaskFormer's head (configs/maskformer_r18-q24_1xb8-2k_synthetic-panoptic.py): the same
    data, schedule and report, the run named after the model."""
    out, data, work = tmp_path / 'out', tmp_path / 'data', tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, 'tools/demo/run_demo.py', '--quick', '--config',
         'configs/maskformer_r18-q24_1xb8-2k_synthetic-panoptic.py', '--data', str(data), '--out', str(out),
         '--work-root', str(work)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    runs = json.loads((out / 'runs.json').read_text())
    assert list(runs) == ['MaskFormer']
    for key in ('coco_panoptic/PQ', 'coco/segm_mAP', 'sem_seg/mIoU'):
        assert 0 <= runs['MaskFormer'][key] <= 100, key
    assert '| PQ |' in (out / 'results.md').read_text()
