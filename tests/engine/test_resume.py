"""Kill -9 after the checkpoint of iteration k, resume to 2k: the run ends bit-identical to an
uninterrupted one whatever the DataLoader settings, and the killed run's DataLoader workers do not
outlive it. A resume with other settings names each; one with nothing left to train stops."""
import os
import os.path as osp
import re
import time

import pytest
import torch

from m2f_mm.errors import M2FConfigError
from m2f_mm.engine.resume import (check_iterations_left, config_literals, resumed_settings, setting_changes)



def _final_state(work_dir: str, iteration: int) -> dict:
    from m2f_mm.checkpoints.loading import load_checkpoint_file
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


def _loader_options(workers: int, persistent: bool) -> list:
    return ['--cfg-options', f'train_dataloader.num_workers={workers}',
            f'train_dataloader.persistent_workers={persistent}']


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical_for_any_dataloader(tiny_data, tmp_path, tools):
    """One uninterrupted run (1 worker, not persistent); killed-and-resumed runs with 2 persistent workers and
    with none end equal to it, tensor for tensor: the data no longer depends on the workers either."""
    run_tool, write_config = tools.run, tools.write_config
    k = 2
    config = write_config(str(tmp_path / 'cfg.py'), tiny_data, max_iters=2 * k)
    pid_file = str(tmp_path / 'children.txt')
    killer = write_config(str(tmp_path / 'killer.py'), tiny_data, max_iters=2 * k, extra=(
        "custom_imports = dict(imports=['m2f_mm', '_test_hooks'], allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='KillAfterIterHook', at_iter={k}, pid_file={pid_file!r})]"))

    straight = run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / 'straight')]
                        + _loader_options(1, False))
    assert straight.returncode == 0, straight.stderr[-3000:]
    a = _final_state(str(tmp_path / 'straight'), 2 * k)

    for workers, persistent in ((2, True), (0, False)):
        killed_dir = str(tmp_path / f'killed_{workers}')
        options = _loader_options(workers, persistent)
        killed = run_tool(['tools/train.py', killer, '--work-dir', killed_dir] + options)
        assert killed.returncode == -9, killed.stderr[-3000:]
        assert osp.exists(osp.join(killed_dir, f'iter_{k}.pth')) and not osp.exists(osp.join(killed_dir, 'iter_4.pth'))
        workers_pids = [int(p) for p in open(pid_file).read().split()]
        assert len(workers_pids) == workers, 'the killed trainer had other DataLoader workers than configured'
        deadline = time.time() + 10
        while any(_alive(p) for p in workers_pids) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers_pids), f'DataLoader workers {workers_pids} outlived the trainer'

        resumed = run_tool(['tools/train.py', config, '--work-dir', killed_dir, '--resume'] + options)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        log = resumed.stdout + resumed.stderr
        assert 'random states not restored' not in log and 'resume: train_' not in log and 'resume: optim' not in log
        assert f'resume: the {k} batches trained before the checkpoint are skipped' in log

        b = _final_state(killed_dir, 2 * k)
        _assert_same_tensors(a['state_dict'], b['state_dict'], 'state_dict')
        _assert_same_tensors(a['optimizer'], b['optimizer'], 'optimizer')
        _assert_same_tensors(a['param_schedulers'], b['param_schedulers'], 'param_schedulers')
        assert a['meta']['iter'] == b['meta']['iter'] == 2 * k
        os.remove(pid_file)


@pytest.mark.slow
def test_resume_with_other_settings_names_each_and_refuses_nothing_left(tiny_data, tmp_path, tools):
    config = tools.write_config(str(tmp_path / 'cfg.py'), tiny_data, max_iters=2)
    work = str(tmp_path / 'work')
    first = tools.run(['tools/train.py', config, '--work-dir', work] + _loader_options(0, False))
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoint = osp.join(work, 'iter_2.pth')

    changed = tools.run(['tools/train.py', config, '--work-dir', work, '--resume', checkpoint, '--cfg-options',
                         'optim_wrapper.optimizer.lr=0.1', 'train_cfg.max_iters=3', 'train_dataloader.batch_size=1',
                         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'])
    assert changed.returncode == 0, changed.stderr[-3000:]
    lines = [line for line in (changed.stdout + changed.stderr).splitlines() if ' - resume: ' in line]
    assert len(lines) == 4, lines                     # lr, max_iters, batch size, and the skip
    assert any("resume: optim_wrapper.optimizer.lr is 0.1 in the config but 0.0004 in the checkpoint: the "
               f"checkpoint's 0.0004 is used" in line and f'load_from={checkpoint}' in line for line in lines)
    assert any('resume: train_cfg.max_iters is 3 in the config but 2 in the checkpoint: training continues to '
               'iteration 3' in line for line in lines)
    assert any('resume: train_dataloader.batch_size is 1 in the config but 2 in the checkpoint: 1 is used' in line
               for line in lines)
    # What the lines say happens: the checkpoint's lr (the LinearLR schedule ended at 4e-4), the config's length.
    final = _final_state(work, 3)
    assert final['meta']['iter'] == 3
    assert {group['lr'] for group in final['optimizer']['param_groups']} == {4e-4}

    done = tools.run(['tools/train.py', config, '--work-dir', work, '--resume', checkpoint])
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if line.startswith('m2f_mm: ')]
    assert error == [f'm2f_mm: train_cfg.max_iters is 2 but {checkpoint} was saved at iteration 2: there is nothing '
                     'left to train. To train longer, resume with --cfg-options train_cfg.max_iters=N, N > 2; or '
                     'resume from an earlier checkpoint'], done.stderr[-2000:]
    assert 'Traceback' not in done.stderr


def test_setting_changes_name_the_value_used(tmp_path):
    probe = str(tmp_path / 'executed')
    saved_text = ("optim_wrapper = dict(\n    optimizer=dict(betas=(0.9, 0.999), lr=0.0004, type='AdamW'),\n"
                  "    type='OptimWrapper')\nparam_scheduler = [dict(begin=0, end=100, type='LinearLR')]\n"
                  "train_cfg = dict(max_iters=2000, type='IterBasedTrainLoop')\n"
                  "train_dataloader = dict(batch_size=8, dataset=dict(pipeline=[dict(type='RandomFlip')]))\n"
                  f"model = dict(init=lambda x: x)\nopen({probe!r}, 'w')\n")
    saved = resumed_settings(config_literals(saved_text))   # parsed, never executed
    assert not osp.exists(probe) and 'model' not in config_literals(saved_text)
    current = dict(saved, **{'optim_wrapper.optimizer': dict(saved['optim_wrapper.optimizer'], lr=0.1, momentum=0.9),
                             'param_scheduler': [dict(begin=0, end=50, type='LinearLR')]})
    lines = setting_changes(saved, current, saved_world=8, world=4, checkpoint='w/iter_500.pth', resume_iter=500)
    assert [re.match(r'resume: (\S+)', line).group(1) for line in lines] == [
        'optim_wrapper.optimizer.lr', 'optim_wrapper.optimizer.momentum', 'param_scheduler', 'this']
    assert "the checkpoint's 0.0004 is used" in lines[0] and "'(not set)' in the checkpoint" in lines[1]
    assert "the checkpoint's schedule is restored" in lines[2]
    assert lines[3].startswith('resume: this run has 4 processes, the checkpoint was saved by 8: 4 are used')
    assert setting_changes(saved, saved, 8, 8, 'c', 500) == []
    assert setting_changes({}, current, None, 4, 'c', 500) == []        # a checkpoint without a readable config
    check_iterations_left(501, 500, 'c')
    with pytest.raises(M2FConfigError, match='max_iters is 500 but c was saved at iteration 500'):
        check_iterations_left(500, 500, 'c')
