"""Data augmentation that depends only on where a sample stands in the sampler's stream.

mmengine seeds DataLoader workers once, so a random transform (``RandomFlip``, ``RandomResize``,
the LSJ crop) draws from a stream that depends on the worker count and, with ``num_workers=0``,
on the main process's generators, which the model draws from too. A resumed run then sees other
augmentations than an uninterrupted one (the skipped batches are loaded after the random states
came back), and 0, 1 or 2 workers train on different data.

Here every sample prepares under generators seeded from ``(seed, rank, epoch, position)``:
``position`` counts the samples the batch sampler produced for this rank in this epoch, and
``epoch`` is the sampler's (``set_epoch``; 0 for ``InfiniteSampler``). Python's ``random``,
numpy's global generator and torch's CPU generator are seeded for the sample and restored
afterwards, so the caller's streams are untouched (``num_workers=0``: the model's random points do
not depend on the data). The data is the same for any worker count and persistence, and loading
or skipping batches changes nothing else; :meth:`PositionedBatches.advance` skips batches by
drawing their indices only.

:class:`M2FDataLoader` is a ``DataLoader`` that does this (``seed`` given) and creates its
iterator on the first ``next()`` rather than in ``iter()``, so a run that resumes can first
advance the index stream (mmengine's ``IterBasedTrainLoop`` calls ``iter()`` when it is built).
"""
import random
from contextlib import contextmanager
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class SampleKey(NamedTuple):
    """A dataset index with its place in the sampler's stream (what seeds its augmentation)."""
    index: int
    epoch: int
    position: int


def sample_seeds(seed: int, rank: int, epoch: int, position: int) -> Tuple[int, np.ndarray, int]:
    """``(python_seed, numpy_seed_words, torch_seed)`` for one sample: distinct per argument, fixed per run."""
    words = np.random.SeedSequence([int(seed), int(rank), int(epoch), int(position)]).generate_state(4)
    return int(words[0]) << 32 | int(words[1]), words[:2].copy(), int(words[2]) << 32 | int(words[3])


@contextmanager
def seeded_randomness(seed: int, rank: int, epoch: int, position: int):
    """Seed ``random``, numpy's and torch's CPU generators for one sample; restore the caller's after."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    py_seed, np_seed, torch_seed = sample_seeds(seed, rank, epoch, position)
    random.seed(py_seed)
    np.random.seed(np_seed)
    torch.default_generator.manual_seed(torch_seed)  # not torch.manual_seed: CUDA generators stay as they are
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


class DatasetView(Dataset):
    """A dataset wrapper whose length and attributes (``metainfo``, ...) are the wrapped ``dataset``'s."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name == 'dataset':  # not yet set (unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


class SeededDataset(DatasetView):
    """``dataset`` whose items, asked for by :class:`SampleKey`, prepare under :func:`seeded_randomness`.

    A plain index is passed through unseeded. Attribute access falls through to ``dataset``.
    """

    def __init__(self, dataset: Dataset, seed: int, rank: int) -> None:
        super().__init__(dataset)
        self.seed = int(seed)
        self.rank = int(rank)

    def __getitem__(self, key):
        if not isinstance(key, SampleKey):
            return self.dataset[key]
        with seeded_randomness(self.seed, self.rank, key.epoch, key.position):
            return self.dataset[key.index]


def _sampler_epoch(batch_sampler) -> int:
    sampler = getattr(batch_sampler, 'sampler', None)
    return int(getattr(sampler, 'epoch', 0) or 0)


class PositionedBatches:
    """The batches of ``batch_sampler`` as lists of :class:`SampleKey`.

    Each ``iter()`` numbers the samples from 0 in the sampler's current epoch, unless
    :meth:`advance` prepared a stream that already skipped some batches.
    """

    def __init__(self, batch_sampler) -> None:
        self.batch_sampler = batch_sampler
        self._advanced: Optional[Tuple[Iterator[Sequence[int]], int, int]] = None

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[List[SampleKey]]:
        if self._advanced is not None:
            batches, epoch, position = self._advanced
            self._advanced = None
        else:
            batches, epoch, position = iter(self.batch_sampler), _sampler_epoch(self.batch_sampler), 0
        for batch in batches:
            yield [SampleKey(int(index), epoch, position + i) for i, index in enumerate(batch)]
            position += len(batch)

    def advance(self, num_batches: int, new_epoch: Callable[[int], None]) -> int:
        """Draw ``num_batches`` batches of indices without loading them; the next ``iter()`` goes on from there.

        At the end of an epoch ``new_epoch(epoch)`` is called (set the sampler's epoch, as the loop
        would) and the stream restarts. The same generator is kept within an epoch, so batch
        samplers with state across batches (``AspectRatioBatchSampler``'s buckets) stay exact.

        Returns:
            The number of epochs that ended.
        """
        batches, epoch, position = iter(self.batch_sampler), _sampler_epoch(self.batch_sampler), 0
        ended = 0
        for _ in range(num_batches):
            batch = next(batches, None)
            if batch is None:
                ended += 1
                new_epoch(ended)
                batches, epoch, position = iter(self.batch_sampler), _sampler_epoch(self.batch_sampler), 0
                batch = next(batches, None)
                if batch is None:
                    raise ValueError('the batch sampler yields no batch: cannot advance it')
            position += len(batch)
        self._advanced = (batches, epoch, position)
        return ended


class _FirstNextIterator:
    """Creates ``loader``'s real iterator on the first ``next()`` (see :class:`M2FDataLoader`)."""

    def __init__(self, loader: 'M2FDataLoader') -> None:
        self._loader = loader
        self._iterator = None

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        if self._iterator is None:
            self._iterator = DataLoader.__iter__(self._loader)
        return next(self._iterator)


class M2FDataLoader(DataLoader):
    """A ``DataLoader`` whose samples are seeded by their stream position (``seed`` not None).

    Takes ``DataLoader``'s arguments plus ``seed`` and ``rank``; ``dataset`` is wrapped in
    :class:`SeededDataset`. Batch size, sampler and batch sampler stay what they were given.
    """

    def __init__(self, dataset: Dataset, *args, seed: Optional[int] = None, rank: int = 0, **kwargs) -> None:
        if seed is not None:
            dataset = SeededDataset(dataset, seed, rank)
            if kwargs.get('generator') is None:
                # The workers' base seed then draws nothing from the global generator (the model's).
                kwargs['generator'] = torch.Generator().manual_seed(int(seed))
        super().__init__(dataset, *args, **kwargs)
        self.positioned: Optional[PositionedBatches] = None
        if seed is not None and self._auto_collation:
            self.positioned = PositionedBatches(self.batch_sampler)

    @property
    def _index_sampler(self):
        # What torch's loader iterators draw indices from; lists of SampleKey when seeded.
        positioned = self.__dict__.get('positioned')
        return positioned if positioned is not None else super()._index_sampler

    def __iter__(self):
        return _FirstNextIterator(self)
