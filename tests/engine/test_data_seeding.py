"""Augmentation seeded by stream position: the same data for any worker count, persistence or skipping,
and the caller's random streams untouched."""
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.runner.loops import IterBasedTrainLoop, _InfiniteDataloaderIterator

from m2f_mm.engine.data_seeding import M2FDataLoader, SampleKey, SeededDataset, sample_seeds, seeded_randomness
from m2f_mm.engine.resume import skip_trained_batches


class RandomAugmented(torch.utils.data.Dataset):
    """Every item draws from all three global generators, as random transforms do; images of two shapes."""

    def __init__(self, size: int = 7) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def get_data_info(self, idx: int) -> dict:  # for AspectRatioBatchSampler
        return dict(width=10 if idx % 3 else 20, height=15)

    def __getitem__(self, idx: int):
        return (int(idx), random.random(), float(np.random.rand()), float(torch.rand(())))


def as_list(batch: list) -> list:
    return batch


def _loader(sampler_type='infinite', batch_sampler=False, **kwargs) -> M2FDataLoader:
    dataset = RandomAugmented()
    sampler = (InfiniteSampler(dataset, shuffle=True, seed=3) if sampler_type == 'infinite'
               else DefaultSampler(dataset, shuffle=True, seed=3))
    if batch_sampler:
        from mmdet.datasets.samplers import AspectRatioBatchSampler
        batching = dict(batch_sampler=AspectRatioBatchSampler(sampler, batch_size=2))
    else:
        batching = dict(batch_size=2, sampler=sampler)
    return M2FDataLoader(dataset, **batching, collate_fn=as_list, seed=5, rank=0, **kwargs)


def _take(iterator, n: int) -> list:
    return [next(iterator) for _ in range(n)]


def test_seeds_differ_per_argument_and_repeat():
    base = sample_seeds(0, 0, 0, 0)
    others = [sample_seeds(1, 0, 0, 0), sample_seeds(0, 1, 0, 0), sample_seeds(0, 0, 1, 0), sample_seeds(0, 0, 0, 1)]
    assert all(o[0] != base[0] and o[2] != base[2] for o in others)
    assert sample_seeds(0, 0, 0, 0)[0] == base[0] and list(sample_seeds(0, 0, 0, 0)[1]) == list(base[1])


def test_a_sample_draws_the_same_numbers_and_leaves_the_callers_streams_alone():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = random.random(), float(np.random.rand()), float(torch.rand(()))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    dataset = SeededDataset(RandomAugmented(), seed=5, rank=0)
    first = dataset[SampleKey(2, 0, 7)]
    assert dataset[SampleKey(2, 0, 7)] == first and dataset[SampleKey(2, 0, 8)] != first
    assert dataset[SampleKey(4, 0, 7)][1:] == first[1:]          # the position seeds, not the index
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected
    with pytest.raises(ZeroDivisionError):                       # restored on errors too
        with seeded_randomness(5, 0, 0, 0):
            1 / 0
    assert dataset[3][0] == 3 and len(dataset) == 7 and dataset.get_data_info(1)['height'] == 15


@pytest.mark.parametrize('workers,persistent', [(1, True), (2, False)])
def test_any_worker_count_loads_the_same_data(workers, persistent):
    reference = _take(iter(_loader()), 6)                        # 0 workers: loaded in this process
    assert len({batch[0][1] for batch in reference}) == 6        # the draws differ from sample to sample
    assert _take(iter(_loader(num_workers=workers, persistent_workers=persistent)), 6) == reference


def _fake_loop(loader, done: int) -> IterBasedTrainLoop:
    """mmengine's loop as Runner.resume leaves it (iteration counter set, iterator built, nothing drawn)."""
    loop = object.__new__(IterBasedTrainLoop)
    loop.dataloader, loop._iter = loader, done
    loop.dataloader_iterator = _InfiniteDataloaderIterator(loader)
    return loop


@pytest.mark.parametrize('sampler_type,batch_sampler,workers', [
    ('infinite', False, 0),       # the synthetic configs
    ('default', True, 0),         # the COCO recipes: DefaultSampler + AspectRatioBatchSampler, epochs roll over
    ('default', True, 2),
])
def test_skipping_draws_indices_only_and_goes_on_where_loading_would(sampler_type, batch_sampler, workers,
                                                                     monkeypatch):
    import mmengine.runner.loops as loops
    monkeypatch.setattr(loops.time, 'sleep', lambda s: None)     # mmengine pauses 2 s at each epoch's end
    done, more = 9, 5
    straight = _take(_InfiniteDataloaderIterator(_loader(sampler_type, batch_sampler, num_workers=workers)),
                     done + more)
    if sampler_type == 'default':
        assert len({b[0][0] for b in straight}) > 1 and done > len(_loader(sampler_type, batch_sampler))

    loop = _fake_loop(_loader(sampler_type, batch_sampler, num_workers=workers), done)
    loaded = []
    original = RandomAugmented.__getitem__
    monkeypatch.setattr(RandomAugmented, '__getitem__', lambda self, i: loaded.append(i) or original(self, i))
    assert 'skipped by drawing their sample indices only' in skip_trained_batches(loop)
    assert [next(loop.dataloader_iterator) for _ in range(done)] == [None] * done   # mmengine's skip: free
    assert loaded == []                                          # (with workers, they would load)
    assert _take(loop.dataloader_iterator, more) == straight[done:]


def test_mmengines_own_skipping_stays_where_it_cannot_be_replaced():
    loader = _loader()
    loop = _fake_loop(loader, 3)
    next(loop.dataloader_iterator)                               # the iterator already drew: cannot advance it
    assert skip_trained_batches(loop) is None
    assert skip_trained_batches(_fake_loop(_loader(), 0)) is None
