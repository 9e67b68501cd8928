"""What ``import m2f_mm`` does, and does not do."""
import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)


def test_import_has_no_global_side_effect():
    """After ``import m2f_mm`` mmengine's checkpoint loaders are the ones mmengine registered."""
    code = ('from mmengine.runner.checkpoint import CheckpointLoader as C; before = dict(C._schemes); '
            'import m2f_mm; assert C._schemes == before, "m2f_mm replaced a loader"; '
            'assert C._schemes[""].__module__ == "mmengine.runner.checkpoint"; print("ok")')
    out = _python(code)
    assert out.stdout.strip().endswith('ok'), out.stderr[-2000:]


def test_pq_imports_with_numpy_alone():
    """m2f_mm.evaluation.pq and the panoptic format with torch, mmengine, mmcv, mmdet and mmseg hidden."""
    hide = "import sys; [sys.modules.__setitem__(m, None) for m in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg')]; "
    out = _python(hide + 'import m2f_mm.evaluation.pq, m2f_mm.structures.panoptic_format as pf, numpy as np; '
                  'print(pf.rgb2id(np.array([[[1, 2, 3]]], np.uint8))[0, 0])')
    assert out.returncode == 0 and out.stdout.split()[-1] == str(1 + 2 * 256 + 3 * 65536), out.stderr[-2000:]
    out = _python(hide + 'import m2f_mm; m2f_mm.M2FDetector')
    assert 'M2FEnvironmentError' in out.stderr and 'needs the OpenMMLab stack' in out.stderr
