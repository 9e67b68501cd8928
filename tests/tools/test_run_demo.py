"""The README's main job, in miniature: generate -> train -> test -> report, through the real tools."""
import pytest
import json
import os.path as osp
import subprocess
import sys

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_quick_demo_produces_pictures_and_table(tmp_path):
    out, data, work = tmp_path / 'out', tmp_path / 'data', tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, 'tools/demo/run_demo.py', '--quick', '--data', str(data), '--out', str(out), '--work-root',
         str(work)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for name in ('curves.png', 'overlays.png', 'results.md', 'runs.json'):
        assert (out / name).stat().st_size > 0, name
    runs = json.loads((out / 'runs.json').read_text())
    metrics = runs['masked attention (paper)']
    for key in ('coco_panoptic/PQ', 'coco/segm_mAP', 'sem_seg/mIoU'):
        assert 0 <= metrics[key] <= 100, key   # all three tasks were evaluated from one model
    table = (out / 'results.md').read_text()
    assert '| PQ |' in table and '| mIoU |' in table and '| mask AP |' in table
    from PIL import Image
    overlay = Image.open(out / 'overlays.png')
    assert overlay.width > overlay.height  # image | GT | panoptic | instance | semantic, side by side

