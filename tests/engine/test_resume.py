"""Kill -9 after the checkpoint of iteration k, resume to 2k: the run ends bit-identical to an
uninterrupted one, and the killed run's DataLoader workers do not outlive it."""
import os
import os.path as osp
import time

import torch



def _final_state(work_dir: str, iteration: int) -> dict:
    from m2f_mm.engine.checkpoint import load_checkpoint_file
    return load_checkpoint_file(osp.join(work_dir, f'iter_{iteration}.pth'))


def _assert_same_tensors(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            _assert_same_tensors(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tensors(x, y, f'{where}[{i}]')
    else:
        assert a == b, where


def _alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


def test_sigkill_then_resume_is_bit_identical(tiny_data, tmp_path, tools):
    run_tool, write_config = tools.run, tools.write_config
    k = 2
    config = write_config(str(tmp_path / 'cfg.py'), tiny_data, max_iters=2 * k)
    pid_file = str(tmp_path / 'children.txt')
    killer = write_config(str(tmp_path / 'killer.py'), tiny_data, max_iters=2 * k, extra=(
        "custom_imports = dict(imports=['m2f_mm', '_test_hooks'], allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='KillAfterIterHook', at_iter={k}, pid_file={pid_file!r})]"))

    straight = run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / 'straight')])
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed_dir = str(tmp_path / 'killed')
    killed = run_tool(['tools/train.py', killer, '--work-dir', killed_dir])
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert osp.exists(osp.join(killed_dir, f'iter_{k}.pth')) and not osp.exists(osp.join(killed_dir, 'iter_4.pth'))
    workers = [int(p) for p in open(pid_file).read().split()]
    assert workers, 'the killed trainer had no DataLoader worker: the test does not test what it claims'
    deadline = time.time() + 10
    while any(_alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), f'DataLoader workers {workers} outlived the killed trainer'

    resumed = run_tool(['tools/train.py', config, '--work-dir', killed_dir, '--resume'])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'random states not restored' not in resumed.stdout + resumed.stderr

    a, b = _final_state(str(tmp_path / 'straight'), 2 * k), _final_state(killed_dir, 2 * k)
    _assert_same_tensors(a['state_dict'], b['state_dict'], 'state_dict')
    _assert_same_tensors(a['optimizer'], b['optimizer'], 'optimizer')
    _assert_same_tensors(a['param_schedulers'], b['param_schedulers'], 'param_schedulers')
    assert a['meta']['iter'] == b['meta']['iter'] == 2 * k
    os.remove(pid_file)
