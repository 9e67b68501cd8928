"""docs/deployment.md runs as written: train a small checkpoint, export + verify, run both backends, compare."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from markdown_runner import blocks, make_sandbox, run_block  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = osp.join(REPO, 'docs', 'deployment.md')
pytest.importorskip('onnxruntime', reason='needs the deploy extra (pip install -e .[deploy])')


@pytest.mark.timeout(900)
def test_every_block_runs_as_written(tmp_path):
    sandbox = make_sandbox(REPO, str(tmp_path / 'reader'))
    ran = []
    for block in blocks(open(PAGE).read()):
        if not block.runs:
            continue
        result = run_block(block, sandbox)
        assert result.returncode == 0, (f'docs/deployment.md line {block.line}:\n{block.code}\n'
                                        f'{result.stdout[-2000:]}\n{result.stderr[-3000:]}')
        ran.append((block.code, result.stdout + result.stderr))
    code = '\n'.join(c for c, _ in ran)
    log = '\n'.join(o for _, o in ran)
    for step in ('pytorch2onnx.py', '--verify', '--backend onnxruntime', 'inference_onnx(', 'benchmark_onnx.py'):
        assert step in code, step
    assert '-> ok' in log and 'onnxruntime results == PyTorch results' in log
    assert 'onnxruntime / PyTorch: latency' in log
    assert "('circle', 'square', 'triangle', 'star') torch.Size([1, 64, 64])" in log
    assert osp.isfile(osp.join(sandbox, 'work_dirs', 'quick', 'model.m2f.json'))
