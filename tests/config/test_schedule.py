"""Schedules follow train_cfg.max_iters: every schedule family keeps its milestones, warm-up, poly end,
validation and checkpoint intervals at the same fractions of the run for any max_iters."""
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from m2f_mm.config import resolve_config
from m2f_mm.config.schedule import resolve_schedule, to_iterations
from m2f_mm.errors import M2FConfigError

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs'))
from zoo_build import REPO  # noqa: E402

# one config of each schedule family, with the recipe's own numbers at its own length
FAMILIES = {
    'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py': dict(
        max_iters=2000, schedulers=[(0, 100, []), (0, 2000, [1800, 1900])], val=500, ckpt=500),
    'm2f_r50_8xb2-lsj-50e_coco-panoptic.py': dict(
        max_iters=368750, schedulers=[(0, 368750, [327778, 355092])], val=5000, ckpt=5000),
    'm2f_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py': dict(
        max_iters=737500, schedulers=[(0, 737500, [655556, 710184])], val=5000, ckpt=5000),
    'm2f_r50_8xb2-160k_ade20k-512x512.py': dict(max_iters=160000, schedulers=[(0, 160000, [])], val=5000, ckpt=5000),
    'm2f_r50_8xb2-90k_cityscapes-512x1024.py': dict(max_iters=90000, schedulers=[(0, 90000, [])], val=5000, ckpt=5000),
}


def _schedule(cfg) -> dict:
    scheds = cfg.param_scheduler if isinstance(cfg.param_scheduler, list) else [cfg.param_scheduler]
    return dict(max_iters=cfg.train_cfg.max_iters,
                schedulers=[(s.get('begin', 0), s.get('end'), list(s.get('milestones', []))) for s in scheds],
                val=cfg.train_cfg.val_interval, ckpt=cfg.default_hooks.checkpoint.interval)


def _resolved(name: str, options=None) -> Config:
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    if options:
        cfg.merge_from_dict(options)
    resolve_schedule(cfg)
    return cfg


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_the_recipe_length_gives_the_recipe_numbers(name):
    assert _schedule(_resolved(name)) == FAMILIES[name]


@pytest.mark.parametrize('name', sorted(FAMILIES))
@pytest.mark.parametrize('max_iters', [800, 12345])
def test_another_max_iters_keeps_every_setting_at_its_fraction(name, max_iters):
    recipe = FAMILIES[name]
    got = _schedule(_resolved(name, {'train_cfg.max_iters': max_iters}))
    scale = max_iters / recipe['max_iters']
    assert got['max_iters'] == max_iters
    for (b0, e0, m0), (b, e, m) in zip(recipe['schedulers'], got['schedulers']):
        assert b == round(b0 * scale) and e == round(e0 * scale)
        assert m == [round(x * scale) for x in m0]
        assert all(abs(x / max_iters - x0 / recipe['max_iters']) <= 0.5 / max_iters + 1e-12 for x, x0 in zip(m, m0))
    assert got['val'] == max(1, round(recipe['val'] * scale))
    assert got['ckpt'] == got['val']  # checkpoints at every validation


def test_paper_milestones_of_the_main_job_are_90_and_95_percent():
    cfg = _resolved('m2f_r18-q24_1xb8-2k_synthetic-panoptic.py', {'train_cfg.max_iters': 1000})
    assert cfg.param_scheduler[1].milestones == [900, 950] and cfg.param_scheduler[0].end == 50


def test_integers_stay_absolute_and_the_resolved_config_holds_plain_numbers():
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=1000, val_interval=0.1),
                      param_scheduler=[dict(type='LinearLR', by_epoch=False, begin=0, end=30),
                                       dict(type='MultiStepLR', by_epoch=False, begin=0, end=1.0,
                                            milestones=[0.5, 700])],
                      default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=0.25))))
    line = resolve_schedule(cfg)
    assert cfg.param_scheduler[0].end == 30 and cfg.param_scheduler[1].end == 1000
    assert cfg.param_scheduler[1].milestones == [500, 700]
    assert cfg.train_cfg.val_interval == 100 and cfg.default_hooks.checkpoint.interval == 250
    assert line == ('schedule: 1000 iterations; LinearLR 0-30; MultiStepLR 0-1000 (x0.1 at 500, 700); '
                    'validation every 100; checkpoint every 250')
    assert resolve_schedule(cfg) == line  # idempotent: a resolved config resolves to itself


def test_a_tiny_interval_fraction_is_at_least_one_iteration():
    assert to_iterations(0.0001, 100, 'train_cfg.val_interval', minimum=1) == 1
    assert to_iterations(0.0001, 100, 'param_scheduler[0].begin') == 0


@pytest.mark.parametrize('value', [1.5, -0.1])
def test_a_float_outside_0_1_is_refused_naming_the_key(value):
    with pytest.raises(M2FConfigError, match=r'param_scheduler\[0\]\.end=.*fraction of train_cfg.max_iters'):
        to_iterations(value, 100, 'param_scheduler[0].end')


def test_fractions_of_an_epoch_based_scheduler_are_refused():
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=100),
                      param_scheduler=dict(type='MultiStepLR', by_epoch=True, milestones=[0.5])))
    with pytest.raises(M2FConfigError, match='by_epoch=False'):
        resolve_schedule(cfg)


def test_max_iters_must_be_a_positive_int():
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=0.5)))
    with pytest.raises(M2FConfigError, match='train_cfg.max_iters=0.5'):
        resolve_schedule(cfg)


def test_cfg_options_max_iters_reaches_a_run_through_resolve_config(tmp_path):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py'))
    cfg.merge_from_dict({'train_cfg.max_iters': 40})
    resolution = resolve_config(cfg, 'train')
    assert resolution.schedule == ('schedule: 40 iterations; LinearLR 0-2; MultiStepLR 0-40 (x0.1 at 36, 38); '
                                   'validation every 10; checkpoint every 10')
