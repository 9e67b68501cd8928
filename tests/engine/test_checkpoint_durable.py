"""Checkpoint writes are all or nothing, old checkpoints go only after the new one is on disk, and
--resume finds an intact checkpoint: the pieces, each in isolation (the tools: test_checkpoint_tools.py)."""
import errno
import multiprocessing
import os
import os.path as osp
import random
import signal
import time
import types

import pytest
import torch

from m2f_mm.engine import durable
from m2f_mm.checkpoints.loading import checkpoint_problem, newest_intact_checkpoint
from m2f_mm.engine.resume import resumable_checkpoint
from m2f_mm.errors import M2FCheckpointError

PAYLOAD = 2 * 1024 * 1024  # float32 values: an 8 MB checkpoint


def _temp_files(folder) -> list:
    return [n for n in os.listdir(folder) if n.endswith(durable.TEMP_SUFFIX)]


def _one_thread(target, *args) -> None:
    # A forked child must not enter the OpenMP thread pool of its parent (it would wait forever on threads
    # that were not forked): torch runs its loops inline with one thread.
    torch.set_num_threads(1)
    target(*args)


def _in_child(target, *args) -> multiprocessing.Process:
    process = multiprocessing.get_context('fork').Process(target=_one_thread, args=(target, ) + args, daemon=True)
    process.start()
    return process


# -- atomic writes ----------------------------------------------------------------------------------

def test_atomic_write_replaces_whole_files_and_leaves_no_temp(tmp_path):
    path = str(tmp_path / 'sub' / 'iter_1.pth')
    durable.atomic_save({'w': torch.arange(5.)}, path)
    assert torch.equal(torch.load(path)['w'], torch.arange(5.))
    durable.atomic_write_text(str(tmp_path / 'last_checkpoint'), path)
    assert open(tmp_path / 'last_checkpoint').read() == path
    os.chmod(path, 0o644)
    durable.atomic_save({'w': torch.ones(2)}, path)
    assert torch.equal(torch.load(path)['w'], torch.ones(2))
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())  # as open() would create it
    assert _temp_files(tmp_path / 'sub') == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failing_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    path = str(tmp_path / 'iter_2.pth')
    durable.atomic_save({'step': 2}, path)
    before = open(path, 'rb').read()

    def fails_half_way(f):
        f.write(b'x' * 1000)
        raise OSError(errno.ENOSPC, 'No space left on device')
    with pytest.raises(OSError, match='No space left'):
        durable.atomic_write(path, fails_half_way)
    assert open(path, 'rb').read() == before and _temp_files(tmp_path) == []
    line = durable.write_failure_message(path, OSError(errno.ENOSPC, 'No space left on device'))
    assert '\n' not in line and path in line and 'No space left on device' in line and ' free of ' in line
    assert str(tmp_path) in line and '--resume' in line


def _write_past_the_file_size_limit(path, limit, result_file):
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        durable.atomic_write_bytes(path, b'y' * (4 * limit))
        outcome = 'written'
    except OSError as err:
        outcome = errno.errorcode.get(err.errno, str(err))
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    with open(result_file, 'w') as f:
        f.write(outcome)


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """RLIMIT_FSIZE makes write() fail with EFBIG past the limit, as ENOSPC does on a full disk."""
    path, result = str(tmp_path / 'iter_2.pth'), str(tmp_path / 'result.txt')
    durable.atomic_save({'w': torch.arange(10.)}, path)
    child = _in_child(_write_past_the_file_size_limit, path, 256 * 1024, result)
    child.join(60)
    assert open(result).read() == 'EFBIG'
    assert torch.equal(torch.load(path)['w'], torch.arange(10.)) and _temp_files(tmp_path) == []


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    dead = _in_child(time.sleep, 0)
    dead.join()
    stale = tmp_path / f'.iter_4.pth.{dead.pid}{durable.TEMP_SUFFIX}'
    mine = tmp_path / f'.iter_6.pth.{os.getpid()}{durable.TEMP_SUFFIX}'
    other = tmp_path / 'notes.partial'
    for p in (stale, mine, other):
        p.write_bytes(b'x')
    assert durable.remove_stale_temp_files(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and mine.exists() and other.exists()


# -- the hook's order of writes, killed at random moments -------------------------------------------

def _fake_runner(work_dir: str, step: int):
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.runner.checkpoint import save_checkpoint
    hub = MessageHub.get_instance(f'durable_test_{os.getpid()}')
    logger = MMLogger.get_instance(f'durable_test_{os.getpid()}', log_level='WARNING')

    def write(out_dir, filename, *args, **kwargs):  # M2FRunner's write path, without the training state
        checkpoint = dict(step=runner.iter + 1, keep=hub.get_info('keep_ckpt_ids'),
                          weights=torch.full((PAYLOAD, ), float(runner.iter + 1)))
        save_checkpoint(checkpoint, osp.join(out_dir, filename), backend_args=dict(backend='m2f_durable_local'))
    runner = types.SimpleNamespace(work_dir=work_dir, iter=step, epoch=0, message_hub=hub, logger=logger,
                                   save_checkpoint=write)
    return runner


def _train_and_save_forever(work_dir: str, keep: int) -> None:
    """A run that resumes like --resume, then saves a checkpoint per step through M2FCheckpointHook."""
    from m2f_mm.engine.hooks.checkpoint import M2FCheckpointHook
    write = durable.write_bytes

    def slow_write(f, data):  # a slow disk: the kill lands inside a write more often
        for start in range(0, len(data), 1 << 20):
            write(f, data[start:start + (1 << 20)])
            time.sleep(0.002)
    durable.write_bytes = slow_write
    path, _ = resumable_checkpoint(work_dir)
    checkpoint = torch.load(path) if path else dict(step=0, keep=[])
    runner = _fake_runner(work_dir, checkpoint['step'])
    runner.message_hub.update_info('keep_ckpt_ids', checkpoint['keep'] or [])
    hook = M2FCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=keep)
    hook.before_train(runner)
    while True:
        hook._save_checkpoint(runner)
        runner.iter += 1


@pytest.mark.slow
def test_kill_at_random_moments_always_leaves_a_loadable_checkpoint(tmp_path):
    """20 kill -9 at random moments of a run saving 8 MB checkpoints with max_keep_ckpts=1: every
    iter_*.pth under its final name is complete, last_checkpoint names one, and no step is lost but the
    one being saved."""
    work_dir, rng, newest, saves, mid_write = str(tmp_path), random.Random(0), 0, 0, 0
    for kill in range(20):
        child = _in_child(_train_and_save_forever, work_dir, 1)
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        names = sorted(n for n in os.listdir(work_dir) if n.startswith('iter_'))
        mid_write += any(n.startswith('.iter_') for n in _temp_files(work_dir))
        for name in names:
            assert checkpoint_problem(osp.join(work_dir, name)) is None, f'kill {kill}: {name} is broken'
        if newest == 0 and not names:
            continue  # killed before its first checkpoint was complete
        named = open(osp.join(work_dir, 'last_checkpoint')).read()
        checkpoint = torch.load(named)  # torch's default, weights_only=True
        assert osp.basename(named) == f'iter_{checkpoint["step"]}.pth' and checkpoint['step'] >= newest
        assert torch.equal(checkpoint['weights'][:3], torch.full((3, ), float(checkpoint['step'])))
        assert len(names) <= 2, f'kill {kill}: {names} (max_keep_ckpts=1, plus the one being replaced)'
        assert resumable_checkpoint(work_dir) == (named, '')
        assert len(_temp_files(work_dir)) <= 1  # only the killed writer's; earlier ones were cleaned up
        saves += checkpoint['step'] - newest
        newest = checkpoint['step']
    # the kills hit the saves: some while a checkpoint was being written, and checkpoints got completed
    assert mid_write >= 3 and saves >= 5, f'{mid_write} kills during a write, {saves} checkpoints in 20 runs'


# -- --resume (auto): which checkpoint --------------------------------------------------------------

def _write(path, step, intact=True):
    torch.save({'step': step, 'w': torch.zeros(1000)}, path)
    if not intact:
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 2])
    return str(path)


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path):
    assert resumable_checkpoint(str(tmp_path)) == (None, '')
    it2, it10 = _write(tmp_path / 'iter_2.pth', 2), _write(tmp_path / 'iter_10.pth', 10)
    _write(tmp_path / 'best_coco_PQ_iter_12.pth', 12)  # best checkpoints hold no optimizer: not resumed from
    assert resumable_checkpoint(str(tmp_path)) == (it10, f'--resume: {tmp_path}/last_checkpoint does not exist; '
                                                         f'resuming from {it10}, the newest intact checkpoint')
    record = tmp_path / 'last_checkpoint'
    record.write_text(it2)
    assert resumable_checkpoint(str(tmp_path)) == (it2, '')  # named and intact: used as is
    record.write_text(str(tmp_path / 'iter_12.pth'))  # what mmengine's hook left: a deleted file
    path, note = resumable_checkpoint(str(tmp_path))
    assert path == it10 and 'iter_12.pth, which does not exist; resuming from' in note
    it12 = _write(tmp_path / 'iter_12.pth', 12, intact=False)
    path, note = resumable_checkpoint(str(tmp_path))
    assert path == it10 and 'which is truncated' in note
    _write(tmp_path / 'iter_10.pth', 10, intact=False)
    assert resumable_checkpoint(str(tmp_path))[0] == it2
    open(it2, 'wb').close()
    with pytest.raises(M2FCheckpointError, match=r'iter_12.pth, which is truncated.*no other intact.*--resume CKPT'):
        resumable_checkpoint(str(tmp_path))
    assert newest_intact_checkpoint([str(tmp_path)]) is None and it12


def test_checkpoint_problem_names_each_kind_of_damage(tmp_path):
    good = _write(tmp_path / 'good.pth', 1)
    assert checkpoint_problem(good) is None
    assert checkpoint_problem(str(tmp_path / 'missing.pth')) == 'does not exist'
    assert checkpoint_problem(str(tmp_path)) == 'is a directory, not a checkpoint file'
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert checkpoint_problem(str(tmp_path / 'empty.pth')) == 'is empty (0 bytes)'
    assert 'is truncated' in checkpoint_problem(_write(tmp_path / 'cut.pth', 1, intact=False))
    data = bytearray(open(good, 'rb').read())
    offset = data.index(b'\0' * 64, 200)  # inside the stored tensor's bytes
    data[offset] = 1
    (tmp_path / 'flipped.pth').write_bytes(bytes(data))
    assert 'fails its CRC check' in checkpoint_problem(str(tmp_path / 'flipped.pth'))


def test_a_replaced_best_checkpoint_is_deleted_only_after_the_new_one_is_written(tmp_path):
    from m2f_mm.engine.hooks.checkpoint import M2FCheckpointHook
    runner = _fake_runner(str(tmp_path), 0)
    write, present_at_write = runner.save_checkpoint, []

    def recording_write(out_dir, filename, *args, **kwargs):
        present_at_write.append((filename, sorted(n for n in os.listdir(out_dir) if n.endswith('.pth'))))
        write(out_dir, filename, *args, **kwargs)
    runner.save_checkpoint = recording_write
    hook = M2FCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=1, save_best='PQ', rule='greater')
    hook.before_train(runner)
    for step, pq in ((1, 10.0), (2, 20.0)):
        runner.iter = step - 1
        hook._save_checkpoint(runner)
        runner.iter = step
        hook.after_val_epoch(runner, {'PQ': pq})
    assert present_at_write[-2] == ('best_PQ_iter_2.pth', ['best_PQ_iter_1.pth', 'iter_2.pth'])
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) == ['best_PQ_iter_2.pth', 'iter_2.pth']
    assert torch.load(tmp_path / 'best_PQ_iter_2.pth')['step'] == 3  # the fake runner's iter + 1
