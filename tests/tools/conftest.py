"""Shared by the tool tests: a tiny synthetic dataset and tiny checkpoints, made once per session.

``trained``: the tiny panoptic / semantic configs trained through tools/train.py for a few
iterations on 64 px images (lr 2e-3 without warm-up, so that the panoptic head already keeps
segments); ``untrained``: the same models at their initialisation, whose panoptic maps are empty
(no query reaches object_mask_thr), saved with the dataset's classes like the runner does.
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PANOPTIC = 'configs/m2f_r18-q24_1xb8-2k_synthetic-panoptic.py'
SEMANTIC = 'configs/m2f_r18-q24_1xb8-2k_synthetic-semantic.py'


def data_options(config: str, data: str) -> list:
    """--cfg-options pointing a synthetic config at ``data`` (its datasets and evaluators follow
    ``data_root``: m2f_mm.config), single process."""
    options = [f'data_root={data}/'] + [f'{split}_dataloader.num_workers=0' for split in ('train', 'val', 'test')]
    return options + ['train_dataloader.persistent_workers=False']


def load_tool(tool: str):
    """A tool script (path under the repository) imported as a module, for its functions."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('m2f_tool_' + osp.basename(tool)[:-3], osp.join(REPO, tool))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(args, timeout=600, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable] + [str(a) for a in args], cwd=REPO, capture_output=True, text=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def _untrained(config: str, path: str, data: str) -> str:
    from m2f_mm.apis import init_model
    torch.manual_seed(0)
    model = init_model(osp.join(REPO, config), cfg_options={'data_root': data + '/'})  # classes: the data's
    # what the runner saves: the classes and the (resolved) config
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': model.dataset_meta,
                                                        'cfg': model.cfg.pretty_text}}, path)
    return path


def _train(config: str, data: str, work_dir: str, iters: int) -> str:
    run_tool(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options'] + data_options(config, data) + [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters + 1}', 'train_dataloader.batch_size=2',
        'default_hooks.logger.interval=5', f'default_hooks.checkpoint.interval={iters}',
        'optim_wrapper.optimizer.lr=0.002', 'param_scheduler.0.start_factor=1.0',
        'optim_wrapper.clip_grad.max_norm=1.0'], timeout=900)
    return osp.join(work_dir, f'iter_{iters}.pth')


@pytest.fixture(scope='session')
def tiny(tmp_path_factory):
    """-> dict(data=DIR, val_images=[paths], panoptic/semantic=dict(trained=CKPT, untrained=CKPT)).

    Made once per test run: under pytest-xdist the workers share one copy (the first to ask builds it
    while the others wait on the lock), since training it is the slowest part of the tool tests."""
    import json
    import os

    from filelock import FileLock
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base
    root = shared / 'tiny-shared'
    with FileLock(str(shared / 'tiny-shared.lock')):
        done = root / 'tiny.json'
        if done.exists():
            return json.loads(done.read_text())
        root.mkdir(exist_ok=True)
        made = _make_tiny(root)
        done.write_text(json.dumps(made))
        return made


def _make_tiny(root) -> dict:
    data = str(root / 'data')
    run_tool(['tools/dataset_converters/make_synthetic_data.py', '--out', data, '--num-train', '6', '--num-val', '2',
              '--size', '64', '64', '--seed', '3'])
    val = sorted(str(p) for p in (root / 'data' / 'val').glob('*.jpg'))
    return dict(
        data=data, val_images=val,
        panoptic=dict(trained=_train(PANOPTIC, data, str(root / 'pan'), 30),
                      untrained=_untrained(PANOPTIC, str(root / 'pan_untrained.pth'), data)),
        semantic=dict(trained=_train(SEMANTIC, data, str(root / 'sem'), 6),
                      untrained=_untrained(SEMANTIC, str(root / 'sem_untrained.pth'), data)))
