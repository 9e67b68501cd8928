"""Schedules that follow ``max_iters``: iteration settings given as fractions of the schedule.

In an iteration-based config, a float in [0, 1] where an iteration count goes is a fraction of
``train_cfg.max_iters``; an int is an absolute iteration, as in mmengine. The fields that take
fractions: ``param_scheduler[*].begin`` / ``end`` / ``milestones``, ``train_cfg.val_interval`` /
``val_begin`` / ``dynamic_intervals``, and ``default_hooks.checkpoint.interval`` (None: at every
validation, the recipes' rule). So

    param_scheduler = dict(type='MultiStepLR', by_epoch=False, begin=0, end=1.0, milestones=[0.9, 0.95])

decays at 90 % and 95 % of whatever ``train_cfg.max_iters`` the run has (the paper's rule), and
``--cfg-options train_cfg.max_iters=N`` gives a consistent schedule. A fraction becomes
``round(fraction * max_iters)`` (intervals at least 1, a scheduler's end at least one past its
begin). :func:`resolve_schedule` writes the iterations into the config, so the config a run saves
(work dir, checkpoint) holds plain numbers.
"""
from typing import List, Optional

from ..errors import M2FConfigError


def is_fraction(value) -> bool:
    return isinstance(value, float)


def to_iterations(value, max_iters: int, key: str, minimum: int = 0):
    """``value`` as an iteration: fractions of ``max_iters`` rounded, ints as they are.

    Raises:
        M2FConfigError: a float outside [0, 1] (neither a fraction nor an iteration count).
    """
    if not is_fraction(value):
        return value
    if not 0.0 <= value <= 1.0:
        raise M2FConfigError(f'{key}={value}: give iterations as an int, or a fraction of train_cfg.max_iters as a '
                             f'float in [0, 1] (e.g. {key}=0.9)')
    return max(minimum, int(round(value * max_iters)))


def _schedulers(cfg) -> list:
    value = cfg.get('param_scheduler')
    if value is None:
        return []
    return [value] if isinstance(value, dict) else list(value)


def resolve_schedule(cfg) -> Optional[str]:
    """Turn the fractions of an iteration-based config into iterations (in place).

    Returns:
        A one-line description of the resolved schedule, or None for a config without an
        iteration-based training loop.
    """
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict) or 'max_iters' not in train_cfg:
        return None
    max_iters = train_cfg['max_iters']
    if not isinstance(max_iters, int) or isinstance(max_iters, bool) or max_iters < 1:
        raise M2FConfigError(f'train_cfg.max_iters={max_iters!r}: give the number of training iterations as a '
                             'positive int')
    for i, sched in enumerate(_schedulers(cfg)):
        if sched.get('by_epoch', True):
            if any(is_fraction(sched.get(k)) for k in ('begin', 'end')) or any(
                    is_fraction(m) for m in sched.get('milestones', []) or []):
                raise M2FConfigError(f'param_scheduler[{i}] counts epochs (by_epoch=True): fractions of the schedule '
                                     'need by_epoch=False')
            continue
        key = f'param_scheduler[{i}]'
        fraction_end = is_fraction(sched.get('end'))
        for name in ('begin', 'end'):
            if name in sched:
                sched[name] = to_iterations(sched[name], max_iters, f'{key}.{name}')
        if fraction_end and sched['end'] <= sched.get('begin', 0):
            sched['end'] = sched.get('begin', 0) + 1  # a short run keeps a (one-iteration) warm-up, as mmengine needs
        if 'milestones' in sched:
            sched['milestones'] = [to_iterations(m, max_iters, f'{key}.milestones') for m in sched['milestones']]
    for name, minimum in (('val_interval', 1), ('val_begin', 0)):
        if name in train_cfg:
            train_cfg[name] = to_iterations(train_cfg[name], max_iters, f'train_cfg.{name}', minimum)
    if train_cfg.get('dynamic_intervals'):
        train_cfg['dynamic_intervals'] = [
            (to_iterations(start, max_iters, 'train_cfg.dynamic_intervals'),
             to_iterations(step, max_iters, 'train_cfg.dynamic_intervals', 1))
            for start, step in train_cfg['dynamic_intervals']]
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if isinstance(checkpoint, dict) and checkpoint.get('by_epoch', True) is False:
        if checkpoint.get('interval') is None:  # at every validation, as the recipes do
            checkpoint['interval'] = train_cfg.get('val_interval') or max_iters
        checkpoint['interval'] = to_iterations(checkpoint['interval'], max_iters, 'default_hooks.checkpoint.interval', 1)
    return describe_schedule(cfg)


def describe_schedule(cfg) -> str:
    """One line: iterations, each lr scheduler's window and steps, validation and checkpoint intervals."""
    train_cfg = cfg.train_cfg
    parts: List[str] = [f'{train_cfg.max_iters} iterations']
    for sched in _schedulers(cfg):
        window = f'{sched.get("begin", 0)}-{sched.get("end", train_cfg.max_iters)}'
        text = f'{sched.get("type")} {window}'
        if sched.get('milestones'):
            text += f' (x{sched.get("gamma", 0.1)} at {", ".join(str(m) for m in sched["milestones"])})'
        parts.append(text)
    interval = train_cfg.get('val_interval')
    if interval:
        parts.append(f'validation every {interval}')
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if isinstance(checkpoint, dict) and checkpoint.get('interval'):
        parts.append(f'checkpoint every {checkpoint["interval"]}')
    return 'schedule: ' + '; '.join(parts)
