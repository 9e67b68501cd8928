"""Loading a checkpoint into a model: the file read with one line per failure, then checked against the model.

mmengine loads ``load_from`` / test checkpoints with ``strict=False`` and reports mismatches as log
lines among hundreds of others, then evaluates or trains the partly random model. Here a
checkpoint is compared with the model first (:func:`compare_state_dicts`, pure): a tensor of the
wrong shape, a model key the checkpoint leaves unfilled, or an unexpected key in a head is an
error (:class:`~m2f_mm.errors.M2FCheckpointError`) naming the keys, both shapes and the
fix. Partial loading is an explicit opt-in and lists what stayed at initialisation.
:func:`load_into` is the whole sequence (read, fit, load, log), used by ``M2FRunner`` and ``init_model``.

A checkpoint that cannot be read (missing, a directory, empty, truncated, corrupt, or a pickle asking
for a refused global) stops with one line too (:func:`load_checkpoint_file`, through the restricted
unpickler of ``safe_load.py``); :func:`checkpoint_problem` checks a file without unpickling it and
:func:`newest_intact_checkpoint` finds the newest intact ``iter_N.pth`` / ``epoch_N.pth`` of a folder.
"""
import logging
import os
import os.path as osp
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log

from ..errors import M2FCheckpointError
from .rename import HEAD_PREFIXES
from .safe_load import RefusedGlobalError, load_local_checkpoint

# mmengine's default revise_keys: a checkpoint saved from a DDP-wrapped model
MODULE_PREFIX_RULES = ((r'^module\.', ''), )
_SHOWN = 8  # keys listed per kind of problem


@dataclass
class LoadReport:
    """How a checkpoint's state dict fits a model's."""
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)
    num_loaded: int = 0

    @property
    def unexpected_in_heads(self) -> List[str]:
        return [k for k in self.unexpected if k.startswith(HEAD_PREFIXES)]

    @property
    def blocking(self) -> bool:
        """True when strict loading must refuse (unexpected keys outside the heads only warn)."""
        return bool(self.missing or self.mismatched or self.unexpected_in_heads)


def revise_keys(state: Mapping[str, object], rules: Sequence[Tuple[str, str]]) -> 'OrderedDict[str, object]':
    """Apply mmengine's ``revise_keys`` regex rules (default: strip a ``module.`` prefix)."""
    out = OrderedDict()
    for key, value in state.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def compare_state_dicts(model_state: Mapping[str, torch.Tensor],
                        ckpt_state: Mapping[str, object]) -> LoadReport:
    """Missing, unexpected and shape-mismatched keys of ``ckpt_state`` against ``model_state``."""
    report = LoadReport()
    for key, value in model_state.items():
        if key not in ckpt_state:
            report.missing.append(key)
            continue
        theirs = tuple(getattr(ckpt_state[key], 'shape', ()))
        if theirs != tuple(value.shape):
            report.mismatched.append((key, theirs, tuple(value.shape)))
        else:
            report.num_loaded += 1
    report.unexpected = [k for k in ckpt_state if k not in model_state]
    return report


def _head_option(key: str) -> str:
    return 'model.decode_head' if key.startswith('decode_head.') else 'model.panoptic_head'


def fix_hints(report: LoadReport, ckpt_state: Mapping[str, object]) -> List[str]:
    """What to change so the checkpoint fits: a config option, a converter, or partial loading."""
    hints = []
    for key, theirs, ours in report.mismatched:
        if key.endswith(('query_feat.weight', 'query_embed.weight')) and theirs[1:] == ours[1:]:
            hints.append(f'the checkpoint has {theirs[0]} queries, the config {ours[0]}: set '
                         f'{_head_option(key)}.num_queries={theirs[0]}')
            break
    for key, theirs, ours in report.mismatched:
        if key.endswith('class_embed.weight') and theirs[1:] == ours[1:]:
            head = _head_option(key)
            option = (f'{head}.num_classes' if head.endswith('decode_head') else
                      f'{head}.num_things_classes / num_stuff_classes (and panoptic_fusion_head\'s)')
            hints.append(f'the checkpoint has {theirs[0] - 1} classes, the model {ours[0] - 1}: set {option} to '
                         f'{theirs[0] - 1}, or fine-tune on the new classes with partial loading (below)')
            break
    keys = list(ckpt_state)
    if any(k.startswith(('panoptic_head.cls_embed.', 'decode_head.cls_embed.')) for k in keys):
        hints.append('this is a checkpoint of mmdet\'s / mmseg\'s own Mask2Former: convert it first with '
                     'python tools/model_converters/mmdet_to_m2f.py IN.pth OUT.pth')
    elif any(k.startswith('sem_seg_head.') for k in keys):
        hints.append('this is a detectron2 (facebookresearch/Mask2Former) checkpoint: convert it first with '
                     'python tools/model_converters/d2_to_m2f.py IN.pkl OUT.pth --config CONFIG')
    elif report.num_loaded == 0 and not report.mismatched:
        hints.append('the checkpoint shares no key with the model: is it a checkpoint of this config?')
    hints.append('to load what fits and keep the rest at initialisation, opt in with --partial-load '
                 '(config: partial_load = True)')
    return hints


def format_report(report: LoadReport, filename: str, hints: Sequence[str] = ()) -> str:
    """A readable account of ``report``: counts, up to a few keys per kind, then the hints."""
    lines = [f'checkpoint {filename} does not fit the model ({report.num_loaded} tensors fit):']
    if report.mismatched:
        lines.append(f'  {len(report.mismatched)} tensor(s) of another shape (checkpoint vs model):')
        lines += [f'    {k}: {list(a)} vs {list(b)}' for k, a, b in report.mismatched[:_SHOWN]]
    if report.missing:
        lines.append(f'  {len(report.missing)} model key(s) the checkpoint does not fill, e.g.:')
        lines += [f'    {k}' for k in report.missing[:_SHOWN]]
    heads = report.unexpected_in_heads
    if heads:
        lines.append(f'  {len(heads)} checkpoint key(s) the model\'s heads do not have, e.g.:')
        lines += [f'    {k}' for k in heads[:_SHOWN]]
    lines += [f'  fix: {h}' for h in hints]
    return '\n'.join(lines)


_CUT_SHORT_FIX = ('it was cut off while being written (a killed run or a full disk) or while being copied: '
                  'use another checkpoint{sibling}, or copy / download it again')
_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')  # what CheckpointHook writes, resumable


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a complete torch checkpoint ('is empty (0 bytes)', ...), or None.

    Reads the whole file to check the CRC of every member of the zip archive; unpickles nothing. A
    file in torch's legacy (non-zip) format gets None: only loading it can tell.
    """
    if not osp.lexists(path):
        return 'does not exist'
    if osp.isdir(path):
        return 'is a directory, not a checkpoint file'
    size = osp.getsize(path)
    if size == 0:
        return 'is empty (0 bytes)'
    with open(path, 'rb') as f:
        zipped = f.read(4) == b'PK\x03\x04'
    if not zipped:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return f'is truncated ({size} bytes; the end of its zip archive is missing)'
    if bad_member is not None:
        return f'is corrupt (its member {bad_member} fails its CRC check)'
    if not any(name.endswith('data.pkl') for name in names):
        return 'is not a torch checkpoint (its zip archive holds no data.pkl)'
    return None


def newest_intact_checkpoint(folders: Sequence[str], exclude: Sequence[str] = ()) -> Optional[str]:
    """The ``iter_N.pth`` / ``epoch_N.pth`` file with the largest N in ``folders`` (``exclude`` left out) that
    :func:`checkpoint_problem` passes, or None."""
    found = []
    for folder in dict.fromkeys(osp.abspath(f) for f in folders if f and osp.isdir(f)):
        for name in os.listdir(folder):
            match = _CHECKPOINT_NAME.match(name)
            if match:
                found.append((int(match.group(1)), osp.join(folder, name)))
    excluded = {osp.abspath(p) for p in exclude}
    for _, path in sorted(found, reverse=True):
        if path not in excluded and checkpoint_problem(path) is None:
            return path
    return None


def _sibling_hint(path: str) -> str:
    sibling = newest_intact_checkpoint([osp.dirname(osp.abspath(path))], exclude=[path])
    return f' (e.g. {sibling}, which is intact)' if sibling else ''


def load_checkpoint_file(filename: str, map_location='cpu') -> dict:
    """A local file through the restricted unpickler (no code runs); URLs through mmengine.

    Raises:
        M2FCheckpointError: one line for a missing, empty, truncated or corrupt file, a directory, or a
            pickle that asks for a global the restricted unpickler refuses (named).
    """
    path = osp.expanduser(filename)
    if '://' in filename and not osp.exists(path):
        from mmengine.runner.checkpoint import CheckpointLoader
        return CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    if not osp.exists(path):
        raise M2FCheckpointError(f'checkpoint {filename} does not exist: check the path given to '
                                 'tools/test.py, --resume or load_from')
    if osp.isdir(path):
        inside = sorted(n for n in os.listdir(path) if n.endswith('.pth'))
        raise M2FCheckpointError(f'checkpoint {filename} is a directory, not a checkpoint file: name the .pth file '
                                 + (f'inside it (e.g. {osp.join(filename, inside[-1])})' if inside else 'itself'))
    try:
        return load_local_checkpoint(path, map_location=map_location)
    except RefusedGlobalError as err:
        raise M2FCheckpointError(f'checkpoint {filename}: {err}') from None
    except Exception as err:  # noqa: BLE001 - torch reports a broken file with many types
        problem = checkpoint_problem(path)
        if problem is None:
            first_line = (str(err).strip().splitlines() or [''])[0]
            raise M2FCheckpointError(f'checkpoint {filename} cannot be read ({type(err).__name__}: {first_line})') \
                from None
        raise M2FCheckpointError(f'checkpoint {filename} {problem}: '
                                 + _CUT_SHORT_FIX.format(sibling=_sibling_hint(path))) from None


def fitting_state(model: torch.nn.Module, checkpoint: Mapping[str, object], filename: str, partial: bool,
                  rules: Sequence[Tuple[str, str]] = MODULE_PREFIX_RULES) -> Tuple[dict, LoadReport]:
    """The checkpoint's state dict, checked against ``model``.

    Raises:
        M2FCheckpointError: when it does not fit and ``partial`` is False.

    Returns:
        ``(state, report)``; with ``partial``, tensors of another shape are left out of ``state``.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise M2FCheckpointError(f'{filename} holds no state dict (got {type(checkpoint).__name__})')
    state = revise_keys(state, rules)
    report = compare_state_dicts(model.state_dict(), state)
    if report.blocking and not partial:
        raise M2FCheckpointError(format_report(report, filename, fix_hints(report, state)))
    bad = {k for k, _, _ in report.mismatched}
    return OrderedDict((k, v) for k, v in state.items() if k not in bad), report


def partial_load_summary(report: LoadReport) -> str:
    """The log line of an opted-in partial load: what stayed at initialisation."""
    kept = [k for k, _, _ in report.mismatched] + report.missing
    text = (f'partial load: {report.num_loaded} tensors loaded, {len(kept)} left at initialisation'
            + (f' ({", ".join(kept[:_SHOWN])}{", ..." if len(kept) > _SHOWN else ""})' if kept else ''))
    if report.unexpected:
        text += f'; {len(report.unexpected)} checkpoint keys unused (e.g. {report.unexpected[0]})'
    return text


def load_into(model: torch.nn.Module, checkpoint: Union[str, Mapping[str, object]], partial: bool = False,
              filename: Optional[str] = None, rules: Sequence[Tuple[str, str]] = MODULE_PREFIX_RULES,
              logger: Union[str, logging.Logger] = 'current') -> LoadReport:
    """Load ``checkpoint`` (a file, read with :func:`load_checkpoint_file`, or a checkpoint already read)
    into ``model``, strictly unless ``partial``.

    ``filename`` names the checkpoint in messages (default: the path). Whatever stayed at initialisation
    or went unused (partial loading, unexpected keys outside the heads) is logged as one warning to
    ``logger`` (:func:`partial_load_summary`).

    Raises:
        M2FCheckpointError: the file cannot be read, or it does not fit and ``partial`` is False.

    Returns:
        How the checkpoint fit the model.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        filename = filename or str(checkpoint)
        checkpoint = load_checkpoint_file(str(checkpoint))
    state, report = fitting_state(model, checkpoint, filename or 'the checkpoint', partial=partial, rules=rules)
    model.load_state_dict(state, strict=False)
    if report.blocking or report.unexpected:
        print_log(partial_load_summary(report), logger=logger, level=logging.WARNING)
    return report
