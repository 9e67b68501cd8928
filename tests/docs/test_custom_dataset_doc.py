"""docs/custom_dataset.md runs as written: every bash and python block, in order, in a fresh folder."""
import os
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from markdown_runner import blocks, make_sandbox, run_block  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = osp.join(REPO, 'docs', 'custom_dataset.md')


def test_the_page_has_the_steps_it_promises():
    page = blocks(open(PAGE).read())
    code = '\n'.join(b.code for b in page if b.runs)
    for step in ('coco_instances_to_panoptic.py', 'check_dataset.py', 'browse_dataset.py', 'tools/train.py',
                 'tools/test.py', 'analyze_logs.py', 'image_demo.py', 'semantic_pngs.py', 'init_model'):
        assert step in code, step
    config = next(b for b in page if b.writes == 'configs/my_dataset.py')
    assert [line for line in config.code.splitlines() if line and not line.startswith('#')] == [
        "_base_ = ['m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']", "data_root = 'data/my_dataset/'"]


@pytest.mark.timeout(1500)
def test_every_block_runs_as_written(tmp_path):
    sandbox = make_sandbox(REPO, str(tmp_path / 'reader'))
    outputs = {}
    for block in blocks(open(PAGE).read()):
        if not (block.runs or block.writes):
            continue
        result = run_block(block, sandbox)
        assert result.returncode == 0, (f'docs/custom_dataset.md line {block.line}:\n{block.code}\n'
                                        f'{result.stdout[-2000:]}\n{result.stderr[-3000:]}')
        outputs[block.line] = result.stdout + result.stderr
    log = '\n'.join(outputs.values())
    assert 'classes: 7 (4 things: circle, square, triangle, star; 3 stuff: sky, grass, water) from ' \
           'data/my_dataset/annotations/panoptic_train.json' in log
    assert 'checked 12 samples: no problems found' in log
    assert 'coco_panoptic/PQ:' in log and 'sem_seg/mIoU:' in log
    for path in ('work_dirs/my_dataset/iter_20.pth', 'outputs/my_dataset_curves.png', 'outputs/my_dataset/panoptic.json',
                 'data/my_semantic/classes.json', 'work_dirs/my_semantic/iter_8.pth'):
        assert osp.isfile(osp.join(sandbox, path)), path
    assert len(os.listdir(osp.join(sandbox, 'outputs', 'my_dataset_gt'))) == 2
    assert "('circle', 'square', 'triangle', 'star') torch.Size([1, 64, 64])" in log
