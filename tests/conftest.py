import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.registry import init_default_scope

# tests/reference/ (re-creations of other implementations, test-only) imports as `reference.*`.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

# Two shared cores: more threads only adds contention.
torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '2')))

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


def pytest_collection_modifyitems(items):
    """A test that asks for the trained tiny checkpoints (tests/tools/conftest.py) pays for their training:
    it is slow whether or not its module says so."""
    for item in items:
        if 'tiny' in getattr(item, 'fixturenames', ()) and item.get_closest_marker('slow') is None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _mmdet_default_scope():
    """Each test starts in mmdet's scope; a test that needs mmseg's switches itself (no leaking between tests)."""
    init_default_scope('mmdet')
    yield


# -- running the real tools on tiny synthetic data ---------------------------------------------------

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CONFIG = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py')


def make_data(root: str, num_train: int = 6, num_val: int = 3, seed: int = 0, size: int = 96) -> str:
    """A synthetic set at ``size`` px (96: a quarter of the default's pixels, what the tool tests need)."""
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'dataset_converters', 'make_synthetic_data.py'), '--out', root,
                    '--num-train', str(num_train), '--num-val', str(num_val), '--seed', str(seed),
                    '--size', str(size), str(size)],
                   check=True, capture_output=True, timeout=300)
    return root


def write_config(path: str, data: str, *, max_iters: int = 4, batch_size: int = 2, extra: str = '') -> str:
    """A leaf config on the tiny model and ``data``: no validation during training, a checkpoint every
    2 iterations, deterministic, one persistent DataLoader worker."""
    text = f'''_base_ = [{TINY_CONFIG!r}]
data_root = {data + '/'!r}
train_dataloader = dict(batch_size={batch_size}, num_workers=1)
val_dataloader = dict(batch_size=1, num_workers=0)
test_dataloader = val_dataloader
max_iters = {max_iters}
train_cfg = dict(max_iters=max_iters, val_interval=10 ** 6)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=-1, save_last=True),
                     visualization=dict(type='DetVisualizationHook'))
log_processor = dict(window_size=1)
randomness = dict(seed=0, deterministic=True)
{extra}
'''
    with open(path, 'w') as f:
        f.write(text)
    return path


def run_tool(args, *, env=None, timeout=600, cwd=REPO) -> subprocess.CompletedProcess:
    """Run a tool of this repository, python or shell (tests/engine/ is on its path, for test-only hooks).

    Output goes through files, not pipes: a process that leaves orphans holding a pipe open would
    otherwise block the test until they exit.
    """
    import tempfile
    # M2F_PYTHON: the launch scripts run this interpreter, whatever ./.venv holds
    full_env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', M2F_PYTHON=sys.executable,
                    PYTHONPATH=osp.join(osp.dirname(osp.abspath(__file__)), 'engine') + os.pathsep + os.environ.get('PYTHONPATH', ''))
    full_env.update(env or {})
    with tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
        launcher = ['bash'] if str(args[0]).endswith('.sh') else [sys.executable]
        proc = subprocess.run(launcher + list(args), cwd=cwd, env=full_env, stdout=out, stderr=err,
                              timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory) -> str:
    return make_data(str(tmp_path_factory.mktemp('synthetic')))


@pytest.fixture
def tools():
    """The helpers above, for test modules (--import-mode=importlib cannot import conftest by name)."""
    import types
    return types.SimpleNamespace(run=run_tool, write_config=write_config, make_data=make_data, repo=REPO,
                                 free_port=free_port)


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
