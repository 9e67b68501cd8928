"""What ``--resume`` restores, in which order, and what it says when the settings changed.

``M2FRunner.resume(filename)`` (called by mmengine's ``load_or_resume`` inside ``train()``, after
the loops, optimizer and schedulers are built and before the first ``before_train`` hook):

1. mmengine's ``Runner.resume``: the weights (``M2FRunner.load_checkpoint``, strict), the epoch
   and iteration counters, the seed (a different saved seed re-seeds the run, with mmengine's
   warning), the message hub, the optimizer state (every param group's hyperparameters: lr,
   weight decay, betas, ... are the checkpoint's) and the parameter schedulers' state (the
   checkpoint's schedule: begin / end / milestones / base values).
2. The settings of the run against the checkpoint's (:func:`setting_changes`): each one that
   differs is logged in one line naming the value that is used; ``train_cfg.max_iters`` at or
   below the saved iteration stops the run (:func:`check_iterations_left`).
3. The data position: the batches trained before are skipped by drawing their indices only
   (:func:`skip_trained_batches`; mmengine would load and discard every one of them). Each sample's
   augmentation is seeded by its position in the sampler's stream (``engine/data_seeding.py``), so
   skipping, loading and the worker count change nothing.
4. This rank's random states (torch CPU and CUDA, numpy, Python), last: nothing above draws from
   them afterwards, so iteration k+1 draws what it drew in the uninterrupted run.

Values that win when the config differs from the checkpoint: the checkpoint's optimizer
hyperparameters and schedule (as in mmengine and mmdet: a resumed run continues the saved one;
start a new run from the weights with ``load_from`` to change them); the config's
``train_cfg.max_iters`` and batch size; the launch's world size (the random states then cannot be
restored).

``--resume`` without a file continues from :func:`resumable_checkpoint` (``last_checkpoint``'s file when
intact, else the newest intact one, saying why). The random states are saved with every checkpoint
(:func:`capture_rng_state`, every rank) and restored last (:func:`rng_states_for_rank`,
:func:`restore_rng_state`).
"""
import ast
import os.path as osp
import random
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..checkpoints.loading import checkpoint_problem, newest_intact_checkpoint
from .data_seeding import M2FDataLoader, _FirstNextIterator
from ..errors import M2FCheckpointError, M2FConfigError

# Settings compared on resume, and which side wins when they differ.
CHECKPOINT_WINS = ('optim_wrapper.optimizer', 'param_scheduler')
CONFIG_WINS = ('train_cfg.max_iters', 'train_dataloader.batch_size')
_NOT_SET = '(not set)'


def _literal(node: ast.AST) -> Any:
    """The value of a config expression made of literals and ``dict(...)`` calls; ValueError otherwise."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict' and not node.args:
        if any(kw.arg is None for kw in node.keywords):
            raise ValueError('dict(**...)')
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    try:
        return ast.literal_eval(node)
    except (TypeError, SyntaxError, RecursionError) as err:
        raise ValueError(str(err)) from err


def config_literals(text: str) -> Dict[str, Any]:
    """The top-level assignments of a config's text (mmengine's ``cfg.pretty_text``) whose values are literals.

    Parsed, never executed: the text comes from a checkpoint file. Other assignments are left out.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = _literal(node.value)
            except ValueError:
                pass
    return values


def _plain(value: Any) -> Any:
    """Config values as plain dicts and lists (ConfigDict -> dict, tuple -> list), for comparison."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resumed_settings(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """The settings compared on resume, as ``{dotted key: value}``; absent ones are left out."""
    cfg = _plain(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg)  # mmengine's Config is no Mapping
    out = {}
    optim_wrapper = cfg.get('optim_wrapper')
    if isinstance(optim_wrapper, dict) and isinstance(optim_wrapper.get('optimizer'), dict):
        out['optim_wrapper.optimizer'] = optim_wrapper['optimizer']
    if 'param_scheduler' in cfg:
        out['param_scheduler'] = cfg['param_scheduler']
    for group, key in (('train_cfg', 'max_iters'), ('train_dataloader', 'batch_size')):
        if isinstance(cfg.get(group), dict) and key in cfg[group]:
            out[f'{group}.{key}'] = cfg[group][key]
    return out


def setting_changes(saved: Mapping[str, Any], current: Mapping[str, Any], saved_world: Optional[int], world: int,
                    checkpoint: str, resume_iter: int) -> List[str]:
    """One line per setting that differs between the checkpoint (``saved``) and this run (``current``).

    Args:
        saved, current: :func:`resumed_settings` of the checkpoint's and this run's config (current
            values resolved: the loop's ``max_iters``, the loader's batch size).
        saved_world: processes of the saved run (None: unknown); world: this run's.
        checkpoint: the file resumed from, named in the fix; resume_iter: its iteration.
    """
    lines = []
    for group in CHECKPOINT_WINS + CONFIG_WINS:
        if group not in saved or group not in current:
            continue  # unknown on one side (e.g. a checkpoint without a readable config): nothing to compare
        if isinstance(saved[group], dict) and isinstance(current[group], dict):
            keys = sorted(set(saved[group]) | set(current[group]))
            pairs = [(f'{group}.{k}', current[group].get(k, _NOT_SET), saved[group].get(k, _NOT_SET)) for k in keys]
        else:
            pairs = [(group, current[group], saved[group])]  # param_scheduler: compared whole
        for key, ours, theirs in pairs:
            if ours == theirs:
                continue
            if group in CHECKPOINT_WINS:
                used = ("the checkpoint's schedule is restored" if group == 'param_scheduler' else
                        f"the checkpoint's {theirs!r} is used (the optimizer state resumes as saved)")
                lines.append(f'resume: {key} is {ours!r} in the config but {theirs!r} in the checkpoint: {used}; '
                             'to train with the config\'s value, start a new run from the weights '
                             f'(--cfg-options load_from={checkpoint}, without --resume)')
            elif key == 'train_cfg.max_iters':
                lines.append(f'resume: train_cfg.max_iters is {ours} in the config but {theirs} in the checkpoint: '
                             f'training continues to iteration {ours} (the lr schedule stays the checkpoint\'s)')
            else:
                lines.append(f'resume: train_dataloader.batch_size is {ours} in the config but {theirs} in the '
                             f'checkpoint: {ours} is used from iteration {resume_iter + 1} on; the {resume_iter} '
                             f'iterations skipped on resume count batches of {ours}, so the run does not continue '
                             'the saved one\'s data')
    if saved_world is not None and saved_world != world:
        lines.append(f'resume: this run has {world} processes, the checkpoint was saved by {saved_world}: {world} '
                     'are used; random states and each process\'s share of the data differ from the saved run\'s, '
                     'so it does not continue bit-identically')
    return lines


def check_iterations_left(max_iters: int, resume_iter: int, checkpoint: str) -> None:
    """Refuse a resume with nothing left to train (``max_iters`` at or below the checkpoint's iteration)."""
    if max_iters <= resume_iter:
        raise M2FConfigError(
            f'train_cfg.max_iters is {max_iters} but {checkpoint} was saved at iteration {resume_iter}: there is '
            f'nothing left to train. To train longer, resume with --cfg-options train_cfg.max_iters=N, N > '
            f'{resume_iter}; or resume from an earlier checkpoint')


class _SkipCalls:
    """Answers the first ``calls`` ``next()`` calls with None (mmengine's discarded skip), then delegates."""

    def __init__(self, iterator, calls: int) -> None:
        self._iterator = iterator
        self._calls = calls

    def __iter__(self):
        return self

    def __next__(self):
        if self._calls > 0:
            self._calls -= 1
            return None
        return next(self._iterator)

    def __getattr__(self, name: str):
        if name == '_iterator':
            raise AttributeError(name)
        return getattr(self._iterator, name)


def _mmengine_set_epoch(loader) -> Callable[[int], None]:
    """What mmengine's ``_InfiniteDataloaderIterator`` does at the end of an epoch, as a function of the epoch."""
    def set_epoch(epoch: int) -> None:
        if hasattr(loader, 'sampler') and hasattr(loader.sampler, 'set_epoch'):
            loader.sampler.set_epoch(epoch)
        elif hasattr(loader, 'batch_sampler') and hasattr(loader.batch_sampler.sampler, 'set_epoch'):
            loader.batch_sampler.sampler.set_epoch(epoch)
    return set_epoch


def skip_trained_batches(train_loop) -> Optional[str]:
    """Skip the batches trained before the checkpoint by drawing their indices only.

    Applies to mmengine's ``IterBasedTrainLoop`` over an :class:`M2FDataLoader` whose iterator has
    not drawn yet (the case after ``Runner.resume``); its ``run()`` then finds the batches skipped.
    Returns the log line, or None where mmengine's own skipping (loading every batch) stays.
    """
    from mmengine.runner.loops import IterBasedTrainLoop, _InfiniteDataloaderIterator
    done = int(getattr(train_loop, 'iter', 0))
    loader = getattr(train_loop, 'dataloader', None)
    iterator = getattr(train_loop, 'dataloader_iterator', None)
    mmengine_loop = isinstance(train_loop, IterBasedTrainLoop) and type(train_loop).run is IterBasedTrainLoop.run
    if (done <= 0 or not mmengine_loop or type(iterator) is not _InfiniteDataloaderIterator
            or not isinstance(loader, M2FDataLoader) or loader.positioned is None
            or not isinstance(iterator._iterator, _FirstNextIterator) or iterator._iterator._iterator is not None):
        return None
    epochs = loader.positioned.advance(done, _mmengine_set_epoch(loader))
    iterator._epoch = epochs  # as if its own epoch ends had happened
    train_loop.dataloader_iterator = _SkipCalls(iterator, done)
    return (f'resume: the {done} batches trained before the checkpoint are skipped by drawing their sample indices '
            'only (no data loaded)')


# -- which checkpoint ------------------------------------------------------------------------------

def resumable_checkpoint(work_dir: str) -> Tuple[Optional[str], str]:
    """What ``--resume`` (auto) continues from: ``(path or None, log line or '')``.

    The checkpoint ``work_dir/last_checkpoint`` names when it is intact; else the newest intact
    checkpoint in ``work_dir`` (and in the folder the name points to), with the line saying why.

    Raises:
        M2FCheckpointError: last_checkpoint names a missing or broken file and no intact one is left.
    """
    record = osp.join(work_dir, 'last_checkpoint')
    named = ''
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip()
    problem = checkpoint_problem(named) if named else None
    if named and problem is None:
        return named, ''
    fallback = newest_intact_checkpoint([work_dir, osp.dirname(named)], exclude=[named] if named else [])
    said = f'{record} names {named}, which {problem}' if named else f'{record} does not exist'
    if fallback:
        return fallback, f'--resume: {said}; resuming from {fallback}, the newest intact checkpoint'
    if named:
        raise M2FCheckpointError(f'--resume: {said}, and no other intact iter_*.pth / epoch_*.pth is in {work_dir}: '
                                 'pass a checkpoint with --resume CKPT, or train without --resume to start over')
    return None, ''


# -- random states --------------------------------------------------------------------------------

def capture_rng_state() -> Dict[str, object]:
    """Every random state training draws from in this process: torch (CPU and CUDA), numpy, random."""
    state = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(), python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, object]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    py_state = state['python']
    random.setstate((py_state[0], tuple(py_state[1]), py_state[2]))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def rng_states_for_rank(states: Optional[Sequence[Mapping[str, object]]], rank: int,
                        world_size: int) -> Tuple[Optional[Mapping[str, object]], str]:
    """This rank's saved state, or ``None`` with the reason it cannot be restored."""
    if not states:
        return None, 'the checkpoint holds no random states (it was not written by M2FRunner)'
    if len(states) != world_size:
        return None, f'the checkpoint holds random states of {len(states)} processes, this run has {world_size}'
    return states[rank], ''
