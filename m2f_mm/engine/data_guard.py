"""What a bad sample does to a run: stop with one line naming the file, or be skipped and counted.

A truncated image, a missing file or a panoptic PNG that disagrees with its JSON used to end a
days-long run with a ~50-line DataLoader-worker traceback when the sample was first drawn.
:class:`GuardedDataset` wraps a built dataset: an exception while preparing sample ``idx`` becomes
an :class:`~m2f_mm.errors.M2FBadSampleError` naming the file, the image id and the
problem, with the fix (``tools/misc/check_dataset.py`` finds every such sample up front). With
``mode='skip'`` the sample is logged once per process, counted in a counter shared by all
DataLoader workers, and replaced by another random sample, as mmengine replaces ``None``
samples (drawn under the sample's own seed, ``engine/data_seeding.py``: the same replacement in
every run). Validation and test loaders always stop: skipping would bias the metric.
"""
import ctypes
import multiprocessing
import signal
import sys
from typing import Callable, Optional

import numpy as np
from mmengine.logging import print_log
from torch.utils.data import DataLoader, Dataset

from .data_seeding import DatasetView, M2FDataLoader
from ..errors import M2FBadSampleError, M2FConfigError

MODES = ('raise', 'skip')
CHECK_HINT = ('check every sample before training with: python tools/misc/check_dataset.py CONFIG; '
              "or train past bad samples with --cfg-options train_dataloader.bad_samples=skip")


def describe_sample(dataset: Dataset, idx: int) -> str:
    """``'img.jpg (image id 7, annotation seg.png)'`` from the dataset's data info, as far as known."""
    try:
        info = dataset.get_data_info(idx)
    except Exception:  # the description must never hide the original problem
        return f'sample {idx}'
    parts = [f'image id {info["img_id"]}'] if 'img_id' in info else []
    if info.get('seg_map_path'):
        parts.append(f'annotation {info["seg_map_path"]}')
    return f'{info.get("img_path", f"sample {idx}")} ({", ".join(parts)})' if parts else \
        str(info.get('img_path', f'sample {idx}'))


class GuardedDataset(DatasetView):
    """``dataset`` whose bad samples raise one clear error (``mode='raise'``) or are skipped.

    Attribute access falls through to the wrapped dataset (``metainfo``, ``get_data_info``, ...),
    so samplers, hooks and evaluators see the dataset they expect.
    """

    def __init__(self, dataset: Dataset, mode: str = 'raise', max_refetch: int = 100) -> None:
        if mode not in MODES:
            raise M2FConfigError(f"bad_samples must be one of {MODES}, got {mode!r}")
        super().__init__(dataset)
        self.mode = mode
        self.max_refetch = max_refetch
        # Shared with forked / spawned DataLoader workers, so the log shows one running total.
        self.num_skipped = multiprocessing.get_context().Value('i', 0)
        self._reported = set()

    def __getitem__(self, idx: int):
        for _ in range(self.max_refetch + 1):
            try:
                return self.dataset[idx]
            except Exception as err:  # noqa: BLE001  any failure to prepare a sample is a bad sample
                where = describe_sample(self.dataset, idx)
                problem = f'{type(err).__name__}: {err}'.strip()
                if self.mode == 'raise':
                    raise M2FBadSampleError(f'bad sample {where}: {problem}. Fix or remove it; {CHECK_HINT}') \
                        from err
                self._skip(where, problem)
                idx = int(np.random.randint(0, len(self.dataset)))
        raise M2FBadSampleError(f'{self.max_refetch + 1} bad samples in a row were skipped; the dataset looks '
                                f'broken as a whole. {CHECK_HINT}')

    def _skip(self, where: str, problem: str) -> None:
        with self.num_skipped.get_lock():
            self.num_skipped.value += 1
            total = self.num_skipped.value
        if where not in self._reported:
            self._reported.add(where)
            print_log(f'skipped bad sample {where}: {problem} ({total} skipped so far)', logger='current',
                      level=30)


def _exit_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a SIGKILLed trainer leaves no workers)."""
    if sys.platform.startswith('linux'):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


class WorkerInit:
    """A DataLoader ``worker_init_fn``: dies with the trainer, then runs the original initialiser."""

    def __init__(self, init_fn: Optional[Callable[[int], None]]) -> None:
        self.init_fn = init_fn

    def __call__(self, worker_id: int) -> None:
        _exit_with_parent()
        if self.init_fn is not None:
            self.init_fn(worker_id)


def with_guard(loader: DataLoader, mode: Optional[str], seed: Optional[int] = None, rank: int = 0) -> DataLoader:
    """The same loader (sampler, batching, workers) over a :class:`GuardedDataset`.

    ``mode=None`` keeps the dataset as is and only makes the workers die with their parent. With
    ``seed``, each sample's augmentation is seeded by its place in the sampler's stream (``rank``'s
    stream), whatever the worker count (:class:`~m2f_mm.engine.data_seeding.M2FDataLoader`).
    """
    dataset = loader.dataset if mode is None else GuardedDataset(loader.dataset, mode)
    # Keep batch_size / sampler when the loader was built from them: runners read loader.batch_size.
    batching = dict(batch_sampler=loader.batch_sampler) if loader.batch_size is None else dict(
        batch_size=loader.batch_size, sampler=loader.sampler, drop_last=loader.drop_last)
    kwargs = dict(**batching, num_workers=loader.num_workers,
                  collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, timeout=loader.timeout,
                  worker_init_fn=WorkerInit(loader.worker_init_fn),
                  multiprocessing_context=loader.multiprocessing_context, generator=loader.generator)
    if loader.num_workers > 0:
        kwargs.update(prefetch_factor=loader.prefetch_factor, persistent_workers=loader.persistent_workers)
    return M2FDataLoader(dataset, seed=seed, rank=rank, **kwargs)
