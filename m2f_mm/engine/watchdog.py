"""A distributed run whose rank stops answering ends with one line naming that rank and its iteration.

A stopped (SIGSTOP, a suspended VM), hung or unreachable rank leaves the others waiting in a
collective operation until torch's timeout (30 minutes by default), with no word of which rank.
Here every rank publishes a heartbeat in the job's rendezvous store (MASTER_ADDR:MASTER_PORT, the
store torchrun or rank 0 serves): a counter, its last finished iteration, its phase (training,
validation), host and pid, written by a thread of its own, so it goes on during a long
validation or checkpoint and stops only when the process stops. A second thread on every rank
judges what the first reads: a rank whose counter stood still for ``env_cfg.dist_cfg.timeout``
seconds ends the job, from every live rank:

    m2f_mm: rank 1 stopped answering after iteration 3 (no heartbeat for 11 s, host h, pid 4242) ...

and the live ranks exit with status 1, so torchrun / srun stop the job (torchrun kills a stopped
process 30 s after its SIGTERM). Torch's collective timeout is a minute longer
(``engine/distributed.py``), so this line comes first; a collective that times out while every
rank still beats (one rank spent that long in something the others wait for) ends with the phase
of every rank (:func:`timeout_message`). ``M2FWatchdogHook`` (``engine/hooks/watchdog.py``) runs
a :class:`Heartbeat` in a training run.
"""
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Dict, List, Optional, Tuple

from .distributed import WATCHDOG_LEAD_S

PREFIX = 'm2f_heartbeat'
RESUME_HINT = ('check that process and its machine (memory, storage, network), then continue with --resume (e.g. '
               'bash tools/dist_train.sh CONFIG N --resume: from the latest checkpoint of the work dir)')
_PHASES = dict(train='training', val='validating', done='finished')


@dataclass
class RankRecord:
    """What one rank last published: a counter that grows with every heartbeat, and its progress."""
    beat: int
    iteration: int
    phase: str
    host: str = ''
    pid: int = 0

    def where(self) -> str:
        """'after iteration 3' / 'while validating after iteration 500', for the stopped-rank message."""
        return (f'after iteration {self.iteration}' if self.phase == 'train'
                else f'while {_PHASES.get(self.phase, self.phase)} after iteration {self.iteration}')

    def state(self) -> str:
        return f'{_PHASES.get(self.phase, self.phase)} after iteration {self.iteration}'


@dataclass
class Observed:
    """What a rank's judge knows of the others: their records and when each counter last changed."""
    records: Dict[int, RankRecord] = field(default_factory=dict)
    changed_at: Dict[int, float] = field(default_factory=dict)

    def update(self, rank: int, record: RankRecord, now: float) -> None:
        old = self.records.get(rank)
        if old is None or old.beat != record.beat:
            self.changed_at[rank] = now
        self.records[rank] = record


def silent_ranks(observed: Observed, now: float, limit: float) -> List[Tuple[int, float]]:
    """``(rank, seconds without a new heartbeat)`` of the ranks silent for more than ``limit`` seconds.

    Ranks that finished (phase ``done``) or were never seen are not judged; longest silence first.
    """
    silent = [(rank, now - t) for rank, t in observed.changed_at.items()
              if now - t > limit and observed.records[rank].phase != 'done']
    return sorted(silent, key=lambda item: -item[1])


def stopped_message(rank: int, record: RankRecord, silence: float, timeout: float) -> str:
    where = f', host {record.host}, pid {record.pid}' if record.host else ''
    return (f'rank {rank} stopped answering {record.where()} (no heartbeat for {silence:.0f} s{where}; '
            f'env_cfg.dist_cfg.timeout={timeout:g} s): its process is stopped, hung or its machine unreachable, '
            f'and the other ranks stop too. Fix: {RESUME_HINT}')


def store_message(address: str, silence: float, timeout: float) -> str:
    return (f'the rendezvous store at {address} stopped answering for {silence:.0f} s (env_cfg.dist_cfg.timeout='
            f'{timeout:g} s): it runs in torchrun on the first machine, or in rank 0 (slurm); that process is '
            f'stopped, hung or its machine unreachable, and the other ranks stop too. Fix: {RESUME_HINT}')


def timeout_message(observed: Observed, own_rank: int, own: RankRecord, timeout: float, now: float,
                    interval: float) -> str:
    """The line for a collective operation that timed out: the silent rank if there is one, else every rank's phase."""
    silent = silent_ranks(observed, now, 3 * interval)
    if silent:
        rank, silence = silent[0]
        return stopped_message(rank, observed.records[rank], silence, timeout)
    phases = {**observed.records, own_rank: own}
    states = '; '.join(f'rank {r} {phases[r].state()}' for r in sorted(phases))
    return (f'a collective operation waited longer than {timeout + WATCHDOG_LEAD_S:g} s (env_cfg.dist_cfg.timeout='
            f'{timeout:g} s + {WATCHDOG_LEAD_S:g} s) while every rank was alive ({states}): one rank spent longer '
            f'than that in something the others wait for (e.g. '
            f'computing metrics, writing a checkpoint, a stalled read). Fix: raise it, e.g. --cfg-options '
            f'env_cfg.dist_cfg.timeout={int(max(2 * timeout, 1800))}; or find where the rank hangs '
            '(py-spy dump --pid PID)')


def is_collective_timeout(err: BaseException) -> bool:
    """Whether ``err`` is torch's (gloo / nccl) report of a collective operation that timed out."""
    text = str(err).lower()
    return ('timed out' in text and 'dataloader' not in text) or 'collective operation timeout' in text


def exit_with(message: str, logger=None) -> None:
    """Print ``m2f_mm: message`` and end this process now (status 1), whatever its other threads do."""
    print(f'm2f_mm: {message}', file=sys.stderr, flush=True)
    if logger is not None:
        try:
            logger.error(message)
        except Exception:  # noqa: BLE001  the exit matters more than the log file
            pass
    os._exit(1)


class Heartbeat:
    """This rank's heartbeat in ``store`` and the judge of the others' (see the module docstring).

    Args:
        store: a ``torch.distributed.Store`` client of its own (its calls may block while the store
            host is stopped; the judge notices).
        rank, world_size: this process's place in the job.
        timeout: seconds of silence that end the job.
        address: the store's address, for the message.
        on_stopped: called with the message (default: print it and exit with status 1).
    """

    def __init__(self, store, rank: int, world_size: int, timeout: float, address: str = '',
                 on_stopped: Optional[Callable[[str], None]] = None) -> None:
        self.store, self.rank, self.world_size = store, rank, world_size
        self.timeout = float(timeout)
        self.interval = min(10.0, max(0.2, self.timeout / 10))
        self.address = address
        self.on_stopped = on_stopped or exit_with
        self.own = RankRecord(beat=0, iteration=0, phase='train', host=socket.gethostname(), pid=os.getpid())
        self.observed = Observed()
        self._lock = threading.Lock()
        self._progress = threading.Event()
        self._stop = threading.Event()
        self._round_at = time.monotonic()  # last time the beating thread got through the store
        self._threads: List[threading.Thread] = []

    def key(self, rank: int) -> str:
        return f'{PREFIX}/{rank}'

    def set_progress(self, iteration: int, phase: str) -> None:
        """Called by the main thread: published with the next heartbeat, which comes at once."""
        self.own.iteration, self.own.phase = int(iteration), phase
        self._progress.set()

    def start(self) -> None:
        for target, name in ((self._beat_loop, 'm2f-heartbeat'), (self._judge_loop, 'm2f-watchdog')):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, finished: bool = True) -> None:
        """Stop both threads; with ``finished``, tell the others this rank is done (it will not be judged)."""
        if finished:
            self.own.phase = 'done'
        self._stop.set()
        self._progress.set()
        if finished and self._threads:
            self._threads[0].join(timeout=self.interval + 1.0)  # the last heartbeat, 'done', goes out

    def _publish(self) -> None:
        self.own.beat += 1
        self.store.set(self.key(self.rank), json.dumps(self.own.__dict__))

    def _read_others(self) -> None:
        for rank in range(self.world_size):
            if rank == self.rank:
                continue
            key = self.key(rank)
            if rank not in self.observed.records and not self.store.check([key]):
                continue
            record = RankRecord(**json.loads(self.store.get(key)))
            with self._lock:
                self.observed.update(rank, record, time.monotonic())

    def _beat_loop(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                self._publish()
                if not stopping:
                    self._read_others()
            except Exception:  # noqa: BLE001  a store that fails is judged by its silence
                pass
            else:
                with self._lock:
                    self._round_at = time.monotonic()
            if stopping:
                return
            self._progress.wait(self.interval)
            self._progress.clear()

    def _judge_loop(self) -> None:
        while not self._stop.wait(self.interval):
            message = self.judge(time.monotonic())
            if message is not None and not self._stop.is_set():
                self.on_stopped(message)
                return

    def judge(self, now: float) -> Optional[str]:
        """The message that ends the job, or None while every rank answers."""
        with self._lock:
            store_silence = now - self._round_at
            if store_silence > self.timeout:
                return store_message(self.address, store_silence, self.timeout)
            if store_silence > 2 * self.interval:
                return None  # this rank's view is not fresh: blame the store later, not the ranks now
            silent = silent_ranks(self.observed, now, self.timeout)
            if silent:
                rank, silence = silent[0]
                return stopped_message(rank, self.observed.records[rank], silence, self.timeout)
        return None

    def timeout_message(self) -> str:
        with self._lock:
            return timeout_message(self.observed, self.rank, self.own, self.timeout, time.monotonic(),
                                   self.interval)


def connect_store(timeout: float):
    """A client of the job's rendezvous store from torchrun's / srun's variables; ``(store, 'host:port')``."""
    from torch.distributed import TCPStore
    host, port = os.environ.get('MASTER_ADDR'), os.environ.get('MASTER_PORT')
    if not host or not port:
        return None, ''
    store = TCPStore(host, int(port), is_master=False, timeout=timedelta(seconds=max(float(timeout), 1.0)))
    return store, f'{host}:{port}'
