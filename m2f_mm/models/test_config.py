"""Test-time settings: one frozen dataclass, read from a config's ``test_cfg`` and checked once.

Shape legend: no tensors here; ``query_chunk_size`` is the q of the fusion's [q, H', W'] chunks.

The keys are the ones users write in ``model.test_cfg`` (mmdet's Mask2Former / MaskFormer keys, the
same names and defaults as mmdet's ``MaskFormerFusionHead``) plus two of m2f_mm's own
(``query_chunk_size``, ``semantic_scores``). :func:`parse` is the one place a ``test_cfg`` is read:
an unknown key, a key the reading head ignores, or a value of the wrong type is refused with
:class:`~m2f_mm.errors.M2FConfigError` instead of being dropped silently.

Readers: ``M2FFusionHead`` (mmdet, every key) and the mmseg decode heads (``M2FSegHead``,
``M2FMaskFormerSegHead``: ``query_chunk_size`` only; mmseg's ``EncoderDecoder`` keys ``mode``,
``crop_size``, ``stride`` arrive with it and are left to mmseg).
"""
import dataclasses
import difflib
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from m2f_mm.errors import M2FConfigError


@dataclasses.dataclass(frozen=True)
class TestConfig:
    """Every test-time option, with its default (see :func:`m2f_mm.models.fusion.fuse`).

    Attributes:
        panoptic_on / instance_on / semantic_on: which results the fusion head returns.
        object_mask_thr: panoptic: queries whose best class probability is not above it are dropped.
        iou_thr: panoptic: a segment keeps at least this fraction of its own mask after the overlap fusion.
        max_per_image: instance: top-k (query, class) pairs kept.
        filter_low_score: panoptic: pixels whose winning mask probability is below 0.5 become VOID
            (the paper's behaviour; mmdet's default is False).
        query_chunk_size: queries resized to the output size at once (memory, not results).
        semantic_scores: also return the per-class scores (``seg_logits``) with the semantic map.
    """
    __test__ = False  # not a pytest test class despite its name

    panoptic_on: bool = True
    instance_on: bool = False
    semantic_on: bool = False
    object_mask_thr: float = 0.8
    iou_thr: float = 0.8
    max_per_image: int = 100
    filter_low_score: bool = False
    query_chunk_size: int = 16
    semantic_scores: bool = False

    @property
    def tasks(self) -> Tuple[str, ...]:
        """The enabled fusions, in :data:`m2f_mm.models.fusion.FUSIONS` order."""
        return tuple(task for task in ('panoptic', 'instance', 'semantic') if getattr(self, f'{task}_on'))

    def to_dict(self) -> Dict[str, Any]:
        """Every option as a plain dict (``test_cfg`` keys), e.g. for a deployment spec file."""
        return dataclasses.asdict(self)


DEFAULTS = TestConfig()
ALL_KEYS: Tuple[str, ...] = tuple(field.name for field in dataclasses.fields(TestConfig))
SEMANTIC_HEAD_KEYS: Tuple[str, ...] = ('query_chunk_size', )
"""What an mmseg decode head reads: it returns per-class scores, so the fusion settings do not apply."""
MMSEG_SEGMENTOR_KEYS: Tuple[str, ...] = ('mode', 'crop_size', 'stride')
"""mmseg's ``EncoderDecoder`` test_cfg keys (whole / slide inference); it hands its test_cfg to the decode head."""

_BOOLS = {'panoptic_on', 'instance_on', 'semantic_on', 'filter_low_score', 'semantic_scores'}
_FRACTIONS = {'object_mask_thr', 'iou_thr'}
_COUNTS = {'max_per_image', 'query_chunk_size'}


def _checked_value(key: str, value: Any, where: str) -> Any:
    """``value`` as the type of option ``key``, or an M2FConfigError naming the option and what it takes."""
    if key in _BOOLS:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        raise M2FConfigError(f'{where}.{key}={value!r}: must be True or False')
    if key in _FRACTIONS:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
            return float(value)
        raise M2FConfigError(f'{where}.{key}={value!r}: must be a number in [0, 1]')
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise M2FConfigError(f'{where}.{key}={value!r}: must be a positive integer')


def parse(cfg: Optional[Mapping] = None, *, where: str = 'test_cfg', reader: str = 'M2FFusionHead',
          keys: Iterable[str] = ALL_KEYS, passthrough: Iterable[str] = (),
          base: TestConfig = DEFAULTS) -> TestConfig:
    """A ``test_cfg`` mapping (None: empty; a TestConfig is returned as is) -> TestConfig.

    Args:
        cfg: the config's ``test_cfg``; only the keys given change ``base``.
        where: the config path named in errors (``'model.test_cfg'``, ``'decode_head.test_cfg'``).
        reader: the class that reads it, named in errors.
        keys: the options ``reader`` reads; any other TestConfig option is refused (it would be ignored).
        passthrough: keys that belong to someone else (mmseg's segmentor) and are skipped.
        base: the values of the options ``cfg`` does not give.

    Raises:
        M2FConfigError: a key outside ``keys`` and ``passthrough`` (naming it, the keys read and a close
            match), or a value of the wrong type.
    """
    if cfg is None:
        return base
    if isinstance(cfg, TestConfig):
        return cfg
    if not isinstance(cfg, Mapping):
        raise M2FConfigError(f'{where} must be a dict of test-time options, got {type(cfg).__name__}')
    keys, passthrough = tuple(keys), tuple(passthrough)
    known = keys + passthrough
    values = {}
    for key, value in cfg.items():
        if key in passthrough:
            continue
        if key not in keys:
            listed = ', '.join(known) if known else 'no keys'
            if key in ALL_KEYS:
                raise M2FConfigError(f'{where}.{key}: {reader} does not read it (its output does not depend on '
                                     f'it); remove it. {reader} reads {listed}')
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ''
            raise M2FConfigError(f'{where}: unknown key {key!r}{hint} ({reader} reads {listed})')
        values[key] = _checked_value(key, value, where)
    return dataclasses.replace(base, **values)
