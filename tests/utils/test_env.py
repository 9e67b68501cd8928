"""A broken mmcv gives one clear message naming the problem and the fix, from the package and the tools."""
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NO_OPS = "import sys; sys.modules['mmcv._ext'] = None; "   # what mmcv-lite looks like
TOO_NEW = "import mmcv; mmcv.__version__ = '2.2.0'; "


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize('breakage, expected', [
    (NO_OPS, 'without its compiled ops'),
    (TOO_NEW, 'mmcv 2.2.0 is installed, but mmdet 3.3'),
])
def test_import_raises_environment_error(breakage, expected):
    result = _python(breakage + 'import m2f_mm')
    assert result.returncode != 0
    assert 'M2FEnvironmentError' in result.stderr and expected in result.stderr
    assert 'MMCV_WITH_OPS=1' in result.stderr  # the fix is named


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py', 'tools/demo/demo_forward.py'])
def test_tools_print_one_message_without_traceback(tool):
    code = (NO_OPS + "import runpy; sys.argv = ['t', 'cfg.py', 'ckpt.pth']; "
            f"runpy.run_path({tool!r}, run_name='__main__')")
    result = _python(code)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert result.stderr.startswith('m2f_mm: mmcv 2.1.0 is installed without its compiled ops')


def test_check_mmcv_passes_on_this_install():
    from m2f_mm.utils.env import check_mmcv
    assert check_mmcv().startswith('2.')


NO_PKG_RESOURCES = "import sys; sys.modules['pkg_resources'] = None; "   # what setuptools >= 81 looks like


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/demo/image_demo.py', 'tools/misc/print_config.py'])
def test_missing_pkg_resources_is_one_message_naming_the_fix(tool):
    code = NO_PKG_RESOURCES + f"import runpy; sys.argv = ['t', '--help']; runpy.run_path({tool!r}, run_name='__main__')"
    result = _python(code)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert result.stderr.startswith('m2f_mm: pkg_resources is missing (setuptools ')
    assert 'pip install "setuptools>=77.0.3,<81"' in result.stderr


@pytest.mark.slow
def test_inference_api_checks_the_environment_too():
    result = _python(NO_PKG_RESOURCES + "from m2f_mm.apis import init_model; "
                     "init_model('configs/m2f_r18-q24_1xb8-2k_synthetic-panoptic.py')")
    assert result.returncode != 0 and 'M2FEnvironmentError: pkg_resources is missing' in result.stderr
