"""docs/usage.md's image demo, Python API and inferencer sections run as written, in order, in a fresh folder
(its installation section is what tests/tools/test_pip_install.py does)."""
import json
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from markdown_runner import blocks, make_sandbox, run_block, section  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SECTIONS = ('Image demo', 'Python API (`m2f_mm.apis`)')  # the second holds "### OpenMMLab inferencers"


@pytest.mark.timeout(1200)
def test_inference_sections_run_as_written(tmp_path):
    page = open(osp.join(REPO, 'docs', 'usage.md')).read()
    sandbox = make_sandbox(REPO, str(tmp_path / 'reader'))
    ran = []
    for heading in SECTIONS:
        for block in blocks(section(page, heading)):
            if not block.runs:
                continue
            result = run_block(block, sandbox)
            assert result.returncode == 0, f'{block.code}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}'
            ran.append(block.code)
    code = '\n'.join(ran)
    for snippet in ('image_demo.py', 'init_model(', 'DetInferencer(model=None', 'M2FDetInferencer(',
                    'MMSegInferencer(model=None'):
        assert snippet in code, snippet
    outputs = osp.join(sandbox, 'outputs')
    demo = json.load(open(osp.join(outputs, 'image_demo', 'panoptic.json')))
    assert [c['name'] for c in demo['categories']][:4] == ['circle', 'square', 'triangle', 'star']
    for path in ('image_demo_semantic/semantic/000001000001.png', 'results/panoptic.json',
                 'det/vis/000001000001.jpg', 'det/preds/000001000001.json', 'seg/vis/000001000001.jpg'):
        assert osp.isfile(osp.join(outputs, path)), path
