"""A test-only hook: SIGKILL the trainer right after the checkpoint of a given iteration is written."""
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
