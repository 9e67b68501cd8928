"""Test-only hooks, imported by the tools through custom_imports (tests/engine is on their PYTHONPATH)."""
import glob
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def child_pids(pid: int) -> list:
    pids = []
    for path in glob.glob(f'/proc/{pid}/task/*/children'):
        with open(path) as f:
            pids += [int(p) for p in f.read().split()]
    return pids


@HOOKS.register_module()
class KillAfterIterHook(Hook):
    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW): the checkpoint of this iteration exists

    def __init__(self, at_iter: int, pid_file: str) -> None:
        self.at_iter = at_iter
        self.pid_file = pid_file

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at_iter:
            with open(self.pid_file, 'w') as f:
                f.write(' '.join(map(str, child_pids(os.getpid()))))
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class RecordRankHook(Hook):
    """Per rank: the random state at the first step, GT segments per step, the final weights, and which
    rank writes checkpoints (the writer function is wrapped), all under ``out_dir``."""
    priority = 'LOWEST'

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.records = dict(segments=[])

    def before_run(self, runner) -> None:
        import mmengine.runner.runner as runner_module
        write, rank, out_dir = runner_module.save_checkpoint, runner.rank, self.out_dir

        def recording_write(checkpoint, filename, *args, **kwargs):
            with open(os.path.join(out_dir, 'writers.txt'), 'a') as f:
                f.write(f'{rank} {os.path.basename(filename)}\n')
            return write(checkpoint, filename, *args, **kwargs)
        runner_module.save_checkpoint = recording_write

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        import hashlib
        import torch
        if 'rng' not in self.records:
            self.records['rng'] = hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()
        self.records['segments'].append([len(s.gt_instances) + int((s.gt_sem_seg.sem_seg != 255).any())
                                         for s in data_batch['data_samples']])

    def after_run(self, runner) -> None:
        import json
        import torch
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        torch.save(model.state_dict(), os.path.join(self.out_dir, f'weights_rank{runner.rank}.pth'))
        with open(os.path.join(self.out_dir, f'records_rank{runner.rank}.json'), 'w') as f:
            json.dump(self.records, f)


@HOOKS.register_module()
class KillDuringCheckpointWriteHook(Hook):
    """Kill -9 once half of checkpoint ``name`` is written (and fsynced) under its temporary name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def before_run(self, runner) -> None:
        import m2f_mm.engine.durable as durable
        write, name = durable.write_bytes, self.name

        def half_then_kill(f, data):
            target = os.path.basename(os.readlink(f'/proc/self/fd/{f.fileno()}'))
            if target.startswith(f'.{name}.'):
                f.write(data[:len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            write(f, data)
        durable.write_bytes = half_then_kill


@HOOKS.register_module()
class FileSizeLimitHook(Hook):
    """From iteration ``at_iter`` on, no file may grow beyond ``limit`` bytes: a write past it fails with
    EFBIG, as on a full disk (SIGXFSZ is ignored so that write() returns the error)."""
    priority = 'LOWEST'  # after CheckpointHook: the checkpoint of at_iter is complete

    def __init__(self, at_iter: int, limit: int) -> None:
        self.at_iter = at_iter
        self.limit = limit

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at_iter:
            import resource
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@HOOKS.register_module()
class StopAfterIterHook(Hook):
    """Rank ``rank`` stops itself (SIGSTOP) after iteration ``at_iter``, as a hung or suspended process would.

    Every rank first writes its pid and its children's to ``pid_dir/rank<r>.pids``; the stopping rank
    writes the time it stops to ``pid_dir/stopped_at``.
    """
    priority = 'LOWEST'

    def __init__(self, at_iter: int, rank: int, pid_dir: str) -> None:
        self.at_iter, self.rank, self.pid_dir = at_iter, rank, pid_dir

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        import time
        if runner.iter + 1 != self.at_iter:
            return
        with open(os.path.join(self.pid_dir, f'rank{runner.rank}.pids'), 'w') as f:
            f.write(' '.join(map(str, [os.getpid()] + child_pids(os.getpid()))))
        if runner.rank == self.rank:
            time.sleep(0.5)  # the heartbeat publishes this iteration first: the rank stops during the next one
            with open(os.path.join(self.pid_dir, 'stopped_at'), 'w') as f:
                f.write(repr(time.time()))
            os.kill(os.getpid(), signal.SIGSTOP)
