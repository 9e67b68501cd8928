"""Plain pip installation, as an OpenMMLab user does it, in a fresh virtual environment (slow: ~2 min).

torch (the pinned CPU build, ``M2F_TORCH`` as in tools/setup_env.sh) and the mmcv wheel go in first,
then m2f_mm: once as a built wheel (checked from outside the clone), once editable. Both must load
every config and run the tools; ``pip check`` must find the declared requirements consistent.

Where the mmcv wheel comes from (the rule): ``M2F_WHEELS``, else ``../shared/wheels``, else the
wheel that tools/setup_env.sh keeps after building mmcv from source
(``M2F_WHEEL_CACHE``/torch-VERSION/, default ``~/.cache/m2f_mm/wheels``). ``make test`` runs the
set-up first, so one of them exists; without any the test skips (compiling mmcv takes ~17 min).
"""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PY_TAG = f'cp{sys.version_info.major}{sys.version_info.minor}'
LOAD_CONFIGS = r'''
import glob, os, sys
from mmengine.config import Config
import m2f_mm
print('m2f_mm from', os.path.dirname(m2f_mm.__file__))
for path in sorted(glob.glob(os.path.join(sys.argv[1], 'configs', '*.py'))):
    cfg = Config.fromfile(path)
    print('loaded', os.path.basename(path), cfg.model.type)
'''


def mmcv_wheel_dirs():
    """The directories searched for the mmcv wheel, in order (see the module docstring)."""
    dirs = []
    wheels = os.environ.get('M2F_WHEELS', '')
    if wheels and wheels != 'none':
        dirs.append(wheels)
    dirs.append(osp.join(REPO, '..', 'shared', 'wheels'))
    cache = os.environ.get('M2F_WHEEL_CACHE') or osp.join(
        os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache'), 'm2f_mm', 'wheels')
    dirs.append(osp.join(cache, f'torch-{torch.__version__}'))
    return dirs


def find_mmcv_wheel():
    for folder in mmcv_wheel_dirs():
        found = sorted(glob.glob(osp.join(folder, f'mmcv-2.1.0-{PY_TAG}-*.whl')))
        if found:
            return found[-1]
    return None


def _run(cmd, cwd, env, timeout=900):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f'{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    return result.stdout


@pytest.mark.timeout(1500)
def test_pip_install_loads_every_config_and_runs_the_tools(tmp_path):
    wheel = find_mmcv_wheel()
    if wheel is None:
        pytest.skip(f'no mmcv 2.1.0 wheel for {PY_TAG} in {mmcv_wheel_dirs()}: run tools/setup_env.sh '
                    '(it keeps the wheel it builds) or set M2F_WHEELS')
    torch_spec = os.environ.get('M2F_TORCH', 'torch==2.13.0')
    if torch_spec == 'skip':
        torch_spec = f'torch=={torch.__version__}'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'
    env['OMP_NUM_THREADS'] = '1'
    venv = tmp_path / 'venv'
    py = str(venv / 'bin' / 'python')
    pip = [py, '-m', 'pip']
    _run([sys.executable, '-m', 'venv', str(venv)], tmp_path, env)
    _run(pip + ['install', '-q', torch_spec], tmp_path, env)
    _run(pip + ['install', '-q', '--no-deps', wheel], tmp_path, env)

    # 1. A built wheel, used from outside the clone: the package alone must carry what it needs.
    dist = tmp_path / 'dist'
    _run(pip + ['wheel', '-q', '--no-deps', '-w', str(dist), REPO], tmp_path, env)
    built = glob.glob(str(dist / 'm2f_mm-*.whl'))
    assert len(built) == 1, built
    _run(pip + ['install', '-q', built[0]], tmp_path, env)
    _run(pip + ['check'], tmp_path, env)  # torch's and mmengine's setuptools needs are both met
    out = _run([py, '-c', LOAD_CONFIGS, REPO], tmp_path, env)
    assert str(venv) in out.splitlines()[0]  # the installed wheel, not the clone
    num_configs = len(glob.glob(osp.join(REPO, 'configs', '*.py')))
    assert out.count('loaded ') == num_configs >= 5

    # 2. Editable, as the README says: every config loads and the tools start.
    _run(pip + ['uninstall', '-y', '-q', 'm2f_mm'], tmp_path, env)
    _run(pip + ['install', '-q', '-e', REPO], tmp_path, env)
    out = _run([py, '-c', LOAD_CONFIGS, REPO], tmp_path, env)
    assert out.count('loaded ') == num_configs
    for tool in ('tools/train.py', 'tools/test.py', 'tools/demo/image_demo.py'):
        assert 'usage:' in _run([py, tool, '--help'], REPO, env, timeout=300)

    # 3. What a later `pip install -U setuptools` does: one line naming the fix, no traceback.
    _run(pip + ['install', '-q', 'setuptools>=81'], tmp_path, env)
    result = subprocess.run([py, 'tools/train.py', '--help'], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert result.stderr.startswith('m2f_mm: pkg_resources is missing')
    assert 'setuptools>=77.0.3,<81' in result.stderr
