"""The heartbeat judge: a rank whose heartbeat stands still for the timeout is named with its iteration;
finished ranks, a slow but beating rank and ranks not yet started are not. (The real launch with a
SIGSTOPped rank is in test_distributed.py.)"""
import threading
import time

import pytest

from m2f_mm.engine.distributed import DEFAULT_TIMEOUT_S, collective_timeout
from m2f_mm.errors import M2FLaunchError
from m2f_mm.engine.watchdog import (Heartbeat, Observed, RankRecord, is_collective_timeout, silent_ranks,
                                    timeout_message)


class DictStore:
    """The three store calls the heartbeat makes; ``frozen`` makes them block, as a stopped store host does."""

    def __init__(self) -> None:
        self.data, self.frozen = {}, threading.Event()

    def _wait(self) -> None:
        while self.frozen.is_set():
            time.sleep(0.05)

    def set(self, key, value) -> None:
        self._wait()
        self.data[key] = value

    def get(self, key) -> bytes:
        self._wait()
        return self.data[key].encode()

    def check(self, keys) -> bool:
        self._wait()
        return all(k in self.data for k in keys)


def test_silence_is_judged_per_rank_from_the_last_change_of_its_counter():
    seen = Observed()
    seen.update(1, RankRecord(beat=4, iteration=3, phase='train'), now=10.0)
    seen.update(2, RankRecord(beat=9, iteration=3, phase='done'), now=10.0)
    seen.update(1, RankRecord(beat=4, iteration=3, phase='train'), now=15.0)   # read again, not changed
    seen.update(3, RankRecord(beat=1, iteration=3, phase='val'), now=10.0)
    seen.update(3, RankRecord(beat=2, iteration=3, phase='val'), now=19.0)     # validating, but beating
    assert silent_ranks(seen, now=21.0, limit=10.0) == [(1, 11.0)]
    assert silent_ranks(seen, now=19.5, limit=10.0) == []


def test_a_rank_that_stops_beating_is_named_with_its_iteration_within_the_timeout():
    store, stopped = DictStore(), []
    ranks = [Heartbeat(store, r, 3, timeout=1.0, on_stopped=stopped.append) for r in range(3)]
    for beat in ranks:
        beat.start()
    ranks[1].set_progress(3, 'train')
    ranks[2].set_progress(3, 'val')
    time.sleep(0.5)
    ranks[2].stop(finished=True)             # finished: never judged
    start = time.monotonic()
    ranks[1].stop(finished=False)            # stops answering, as a SIGSTOPped process
    while not stopped and time.monotonic() - start < 5:
        time.sleep(0.05)
    ranks[0].stop()
    assert stopped, 'the silent rank was not reported'
    assert time.monotonic() - start < 1.0 + 2 * ranks[0].interval + 0.5
    assert stopped[0].startswith('rank 1 stopped answering after iteration 3 (no heartbeat for 1 s, host ')
    assert 'env_cfg.dist_cfg.timeout=1 s' in stopped[0] and '--resume' in stopped[0]


def test_a_store_that_stops_answering_is_named():
    store, stopped = DictStore(), []
    ranks = [Heartbeat(store, r, 2, timeout=0.6, address='10.0.0.1:29500', on_stopped=stopped.append)
             for r in range(2)]
    for beat in ranks:
        beat.start()
    time.sleep(0.3)
    store.frozen.set()
    deadline = time.monotonic() + 5
    while len(stopped) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    for beat in ranks:
        beat.stop(finished=False)
    store.frozen.clear()
    assert len(stopped) == 2 and stopped[0].startswith('the rendezvous store at 10.0.0.1:29500 stopped answering')


def test_a_collective_timeout_names_the_silent_rank_or_every_ranks_phase():
    seen = Observed()
    seen.update(1, RankRecord(beat=2, iteration=500, phase='val'), now=0.0)
    own = RankRecord(beat=7, iteration=500, phase='train')
    text = timeout_message(seen, 0, own, timeout=600, now=1.0, interval=10)
    assert 'every rank was alive (rank 0 training after iteration 500; rank 1 validating after iteration 500)' in text
    assert 'env_cfg.dist_cfg.timeout=1800' in text
    assert timeout_message(seen, 0, own, timeout=600, now=31.0, interval=10).startswith(
        'rank 1 stopped answering while validating after iteration 500 (no heartbeat for 31 s')
    assert is_collective_timeout(RuntimeError('[gloo/transport/tcp/pair.cc:534] Timed out waiting 10000ms for recv'))
    assert is_collective_timeout(RuntimeError('Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9)'))
    assert not is_collective_timeout(RuntimeError('CUDA out of memory'))
    assert not is_collective_timeout(RuntimeError('DataLoader timed out after 60 seconds'))


def test_the_timeout_is_checked_and_defaults_to_minutes_not_half_an_hour():
    assert collective_timeout(None) == collective_timeout({}) == DEFAULT_TIMEOUT_S == 600
    assert collective_timeout(dict(timeout=20)) == 20.0
    for bad in (0, -5, 'soon', float('inf')):
        with pytest.raises(M2FLaunchError, match='env_cfg.dist_cfg.timeout must be a positive number of seconds'):
            collective_timeout(dict(timeout=bad))
