"""``M2FWatchdogHook``: every rank of a distributed run publishes a heartbeat and judges the others'.

A rank that stops answering ends the job with one line naming it and its iteration; the heartbeat,
the judge and the messages are in ``engine/watchdog.py``.
"""
from typing import Optional

from mmengine.hooks import Hook

from ...registry import register_hook
from ..watchdog import Heartbeat, connect_store, exit_with, is_collective_timeout


@register_hook
class M2FWatchdogHook(Hook):
    """Runs a :class:`Heartbeat` on every rank of a distributed run (registered by ``M2FRunner``)."""
    priority = 'VERY_HIGH'  # progress is published before other hooks act on the iteration

    def __init__(self, timeout: float) -> None:
        self.timeout = float(timeout)
        self.heartbeat: Optional[Heartbeat] = None

    def before_run(self, runner) -> None:
        if runner.world_size < 2:
            return
        store, address = connect_store(self.timeout)
        if store is None:
            runner.logger.warning('no MASTER_ADDR / MASTER_PORT: ranks that stop answering are found only by '
                                  "torch's collective timeout (env_cfg.dist_cfg.timeout)")
            return
        self.heartbeat = Heartbeat(store, runner.rank, runner.world_size, self.timeout, address,
                                   on_stopped=lambda message: exit_with(message, runner.logger))
        self.heartbeat.set_progress(runner.iter, 'train')
        self.heartbeat.start()

    def _progress(self, iteration: int, phase: str) -> None:
        if self.heartbeat is not None:
            self.heartbeat.set_progress(iteration, phase)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._progress(runner.iter + 1, 'train')

    def before_val(self, runner) -> None:
        self._progress(runner.iter, 'val')

    def after_val(self, runner) -> None:
        self._progress(runner.iter, 'train')

    def after_run(self, runner) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop(finished=True)
            self.heartbeat = None

    def fail_on_timeout(self, err: BaseException) -> None:
        """From the main thread: a collective timed out; end the job naming the rank (never returns)."""
        if self.heartbeat is not None and is_collective_timeout(err):
            self.heartbeat.stop(finished=False)
            exit_with(self.heartbeat.timeout_message())
