"""The test metrics JSON is written by the main process only, and M2FRunner uses that hook for LoggerHook."""
import json
import multiprocessing
import os
import os.path as osp
import types

import pytest
import torch

from mmengine.hooks import LoggerHook

from m2f_mm.engine.hooks.logger import M2FLoggerHook

WORLD = 2
METRICS = {f'coco_panoptic/PQ_{i}': float(i) for i in range(2000)}  # a JSON file of ~60 KB: writes of two ranks overlap


class _LogProcessor:
    def get_log_after_epoch(self, runner, batch_idx, mode, with_non_scalar=False):
        return dict(METRICS), 'test metrics'


def _rank(rank: int, hook_type: str, folder: str, store: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=WORLD)
    import mmengine.hooks.logger_hook as logger_hook
    real_dump = logger_hook.dump

    def recording_dump(obj, path, *args, **kwargs):
        with open(osp.join(folder, f'writer{rank}'), 'a') as f:
            f.write('1\n')
        return real_dump(obj, path, *args, **kwargs)

    logger_hook.dump = recording_dump
    hook = {'LoggerHook': LoggerHook, 'M2FLoggerHook': M2FLoggerHook}[hook_type]()
    hook.json_log_path = 'metrics.json'
    runner = types.SimpleNamespace(log_processor=_LogProcessor(), log_dir=folder, test_dataloader=[0, 1, 2],
                                   logger=types.SimpleNamespace(info=lambda message: None))
    for _ in range(5):
        torch.distributed.barrier()
        hook.after_test_epoch(runner, METRICS)
    torch.distributed.destroy_process_group()


def _run_two_ranks(hook_type: str, folder) -> dict:
    os.makedirs(folder)
    context = multiprocessing.get_context('fork')
    processes = [context.Process(target=_rank, args=(r, hook_type, str(folder), str(folder) + '.store'))
                 for r in range(WORLD)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WORLD
    return {r: len(open(osp.join(folder, f'writer{r}')).readlines()) if osp.exists(osp.join(folder, f'writer{r}'))
            else 0 for r in range(WORLD)}


@pytest.mark.timeout(180)
def test_only_the_main_process_writes_the_test_metrics(tmp_path):
    # mmengine's hook: both ranks write the same file (the race this hook removes)
    assert _run_two_ranks('LoggerHook', tmp_path / 'mmengine') == {0: 5, 1: 5}
    assert _run_two_ranks('M2FLoggerHook', tmp_path / 'ours') == {0: 5, 1: 0}
    with open(tmp_path / 'ours' / 'metrics.json') as f:
        assert json.load(f) == METRICS


def test_m2f_runner_puts_the_hook_in_place_of_logger_hook_with_its_settings(tmp_path):
    from mmengine.model import BaseModel

    from m2f_mm.engine.runner import M2FRunner

    class _Model(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

        def forward(self, *args, **kwargs):
            pass

    runner = M2FRunner(model=_Model(), work_dir=str(tmp_path),
                       default_hooks=dict(logger=dict(type='LoggerHook', interval=7, log_metric_by_epoch=False)))
    loggers = [hook for hook in runner.hooks if isinstance(hook, LoggerHook)]
    assert [type(h) for h in loggers] == [M2FLoggerHook]
    assert loggers[0].interval == 7 and loggers[0].log_metric_by_epoch is False
