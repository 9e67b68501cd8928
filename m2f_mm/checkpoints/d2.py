"""Official Mask2Former and MaskFormer (facebookresearch/Mask2Former, facebookresearch/MaskFormer,
detectron2) checkpoints -> m2f_mm.

Pure functions over state dicts (name -> array); no model is built here. The CLI is
``tools/model_converters/d2_to_m2f.py``; the checkpoint table is ``docs/official_checkpoints.md``.

A detectron2 ``model_final_*.pkl`` is a pickle of ``{'model': {name: numpy array}, '__author__': ...,
'matching_heuristics': ...}``; a detectron2 ``.pth`` holds the same ``'model'`` dict with tensors.

The key tables (head, FPN, ResNet, Swin) are in ``d2_keys.py``; ``criterion.empty_weight`` (and
``pixel_mean`` / ``pixel_std`` if present) are not weights and are dropped.

Why renaming is enough:
  * level order: detectron2 sorts the encoder inputs by stride and builds ``input_proj`` from
    ``transformer_in_channels[::-1]``, so ``input_proj[0]`` / ``level_embed[0]`` belong to res5
    (stride 32), exactly like ours (coarsest first). The FPN convs are registered finest first
    (``adapter_1`` = res2) and used reversed; ours are stored in use order, so with F FPN levels
    ``adapter_k`` is ``lateral_convs[F - k]`` (F = 1 for Mask2Former: only stride 4).
  * detectron2's ``MSDeformAttn`` and mmcv's ``MultiScaleDeformableAttention`` have the same four
    Linear layers and view their outputs identically: sampling_offsets as
    [.., heads, levels, points, 2] and attention_weights as [.., heads, levels * points].
  * ``nn.MultiheadAttention`` packs q, k, v in ``in_proj_weight`` rows [q; k; v]; our
    ``M2FAttention`` keeps that layout.
  * the sine positional encodings have no parameters.

MaskFormer (``M2FMaskFormerHead``) is told apart by its predictor: ``predictor.transformer.decoder.*``
and ``predictor.query_embed`` (DETR's ``nn.Transformer``-style decoder) instead of Mask2Former's
``predictor.transformer_*_layers.*`` and ``query_feat``. Why renaming is enough there:
  * BasePixelDecoder registers ``adapter_k`` / ``layer_k`` finest first (k = 1 is res2) and
    ``layer_n`` is the 1/32 conv (after the encoder in TransformerEncoderPixelDecoder); ours keeps
    the finest-first order and names the 1/32 conv ``last_feat_conv`` / ``encoder_out_proj``.
  * the decoder and the pixel decoder's encoder are DETR's post-norm layers with
    ``nn.MultiheadAttention`` (q, k, v packed [q; k; v]) - ours have the same parameters.
  * the predictor's own encoder (``MASK_FORMER.ENC_LAYERS``, 0 in every official config) and the
    pre-norm variant (``PRE_NORM``, False everywhere) have no counterpart and are refused.
  * files with the pixel decoder directly under ``sem_seg_head.`` (``sem_seg_head.adapter_1`` ..., the
    layout before MaskFormerHead's version 2) are read as the official loader reads them: its
    ``_load_from_state_dict`` moves them under ``pixel_decoder.`` (the model-zoo files were not
    available here to check which layout they use).

Backbones (``backbone.`` on both sides):

  * detectron2 ResNet -> mmdet/mmseg ``ResNet``: ``stem.conv1`` (+ ``.norm``) -> ``conv1`` / ``bn1``;
    ``res{s}.{j}.conv{c}`` (+ ``.norm``) -> ``layer{s-1}.{j}.conv{c}`` / ``bn{c}``; ``.shortcut``
    (+ ``.norm``) -> ``.downsample.0`` / ``.1``. A DeepLab-style stem (``stem.conv1..3``) maps to
    ``ResNetV1c``'s ``stem.{0,3,6}`` / ``stem.{1,4,7}``. detectron2's FrozenBN has no
    ``num_batches_tracked``; it is filled with 0 where the target BN has one.
  * detectron2's copy of the official Swin -> mmdet/mmseg ``SwinTransformer`` via mmdet's own
    ``swin_converter`` (w_msa / ffn renames and the PatchMerging channel re-ordering).
"""

import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ..errors import M2FCheckpointError
from .d2_keys import (HEAD_TABLE, MASKFORMER_HEAD_TABLE, PIXEL_DECODER, PREDICTOR, convert_swin, fpn_table,
                      maskformer_fpn_table, resnet_table, swin_to_d2)
from .rename import WEIGHT_HEAD_PREFIXES, compile_table, head_prefix_of, prefixed, rename_keys
from .safe_load import RefusedGlobalError, RestrictedUnpickler, load_local_checkpoint, refused_data_class

D2_HEAD_PREFIX = 'sem_seg_head.'
# Present in detectron2 checkpoints but not weights of the model: the loss's class weights and
# (only in some files) the input normalisation, which lives in data_preprocessor here.
D2_DROPPED_KEYS = ('criterion.empty_weight', 'pixel_mean', 'pixel_std')

__all__ = ['ConversionResult', 'CheckpointFormatError', 'CheckpointMismatchError', 'convert_d2_checkpoint',
           'to_d2_layout', 'load_d2_checkpoint', 'extract_d2_weights', 'd2_head_summary', 'd2_model_kind',
           'maskformer_head_settings']

MASK2FORMER, MASKFORMER = 'Mask2Former', 'MaskFormer'
# The pixel decoder children of a MaskFormer head; the layout before the head's version 2 held them
# directly under sem_seg_head. (the official MaskFormerHead._load_from_state_dict moves them).
_MF_PIXEL_DECODER_CHILDREN = re.compile(r'(adapter_\d+|layer_\d+|mask_features|input_proj|transformer)\.')


class CheckpointFormatError(M2FCheckpointError, ValueError):
    """The file / dict is not a detectron2 Mask2Former / MaskFormer checkpoint m2f_mm can convert."""


class CheckpointMismatchError(M2FCheckpointError, ValueError):
    """The checkpoint does not fit the model built from the config."""


@dataclass
class ConversionResult:
    """Result of :func:`convert_d2_checkpoint`.

    Attributes:
        state_dict: our key -> tensor (target order when a target was given).
        unmapped_source_keys: detectron2 keys whose tensor is NOT in ``state_dict``: no rule
            matches them, or (with a target) the model has no such parameter. Each entry is the
            source key, with `` -> <our key>`` appended in the second case.
        missing_target_keys: target keys left unfilled (only with a target and ``partial=True``).
        dropped_source_keys: known non-weight entries that were skipped (``criterion.empty_weight``).
    """
    state_dict: 'OrderedDict[str, Tensor]'
    unmapped_source_keys: List[str]
    missing_target_keys: List[str]
    dropped_source_keys: List[str] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers
def _as_tensor(value) -> Optional[Tensor]:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, copy=True))  # writable, owns its memory
    if isinstance(value, (np.generic, int, float, bool)):
        return torch.as_tensor(np.asarray(value))
    return None


def _prefix_summary(keys: Iterable[str], depth: int = 2, limit: int = 12) -> str:
    counts: Dict[str, int] = {}
    for key in keys:
        prefix = '.'.join(str(key).split('.')[:depth])
        counts[prefix] = counts.get(prefix, 0) + 1
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ', '.join(f'{p}.* ({n})' for p, n in items[:limit])
    return text + (f', ... ({len(items) - limit} more prefixes)' if len(items) > limit else '') or '(none)'


def _infer_head_prefix(target_state: Optional[Mapping[str, object]], head_prefix: Optional[str]) -> str:
    if head_prefix is not None:
        return head_prefix if head_prefix.endswith('.') else head_prefix + '.'
    return head_prefix_of(target_state if target_state is not None else ())


def backbone_name(d2_state: Mapping[str, object]) -> str:
    keys = [str(k) for k in d2_state if str(k).startswith('backbone.')]
    if any(k.startswith('backbone.patch_embed.') for k in keys):
        return 'a Swin Transformer'
    blocks = sum(1 for k in keys if re.match(r'backbone\.res\d\.\d+\.conv1\.weight$', k))
    if blocks:
        bottleneck = any(k.endswith('.conv3.weight') for k in keys)
        depth = ({16: 50, 33: 101, 50: 152} if bottleneck else {8: 18, 16: 34}).get(blocks)
        return f'a ResNet ({blocks} residual blocks' + (f': ResNet-{depth}' if depth else '') + ')'
    return 'not a known layout (no backbone.stem.* / backbone.patch_embed.*)'


def d2_model_kind(d2_state: Mapping[str, object]) -> str:
    """``'MaskFormer'`` when the predictor is DETR-style (``predictor.transformer.decoder.*`` /
    ``predictor.query_embed`` without ``query_feat``), else ``'Mask2Former'``."""
    keys = [str(k) for k in d2_state]
    if any(k.startswith(PREDICTOR + 'transformer.') for k in keys):
        return MASKFORMER
    if PREDICTOR + 'query_embed.weight' in keys and PREDICTOR + 'query_feat.weight' not in keys:
        return MASKFORMER
    return MASK2FORMER


def _layer_count(keys: Iterable[str], prefix: str) -> int:
    return len({m.group(1) for m in (re.match(re.escape(prefix) + r'(\d+)\.', str(k)) for k in keys) if m})


def d2_head_summary(d2_state: Mapping[str, object]) -> Dict[str, object]:
    """Facts read off a detectron2 state dict, ``None`` where the key is absent.

    Both kinds: ``model`` ('Mask2Former' / 'MaskFormer'), ``num_classes`` (without no-object),
    ``num_queries``, ``num_decoder_layers``, ``hidden_dim``. MaskFormer also: ``pixel_decoder``
    ('BasePixelDecoder' / 'TransformerEncoderPixelDecoder'), ``num_encoder_layers`` (the pixel
    decoder's), ``num_predictor_encoder_layers``, ``num_levels`` (FPN inputs), ``decoder_input_proj``
    (predictor.input_proj present), ``memory_channels`` (what the decoder attends to) and
    ``transformer_in_feature`` ('transformer_encoder' or 'res5', the official setting).
    """
    kind = d2_model_kind(d2_state)
    keys = [_maskformer_key(str(k)) if kind == MASKFORMER else str(k) for k in d2_state]
    state = dict(zip(keys, d2_state.values()))

    def rows(key: str) -> Optional[int]:
        value = state.get(key)
        return int(value.shape[0]) if value is not None and hasattr(value, 'shape') and len(value.shape) else None

    def cols(key: str) -> Optional[int]:
        value = state.get(key)
        return int(value.shape[1]) if value is not None and hasattr(value, 'shape') and len(value.shape) >= 2 \
            else None

    cls_rows = rows(PREDICTOR + 'class_embed.weight')
    summary: Dict[str, object] = dict(model=kind, num_classes=None if cls_rows is None else cls_rows - 1)
    if kind == MASK2FORMER:
        summary.update(num_queries=rows(PREDICTOR + 'query_feat.weight'),
                       num_decoder_layers=_layer_count(d2_state, PREDICTOR + 'transformer_ffn_layers.') or None,
                       hidden_dim=cols(PREDICTOR + 'query_feat.weight'))
        return summary
    with_encoder = (PIXEL_DECODER + 'input_proj.weight' in state
                    or any(k.startswith(PIXEL_DECODER + 'transformer.') for k in keys))
    hidden = cols(PREDICTOR + 'query_embed.weight')
    proj_in = cols(PREDICTOR + 'input_proj.weight')
    memory = proj_in if proj_in is not None else hidden
    summary.update(
        num_queries=rows(PREDICTOR + 'query_embed.weight'),
        num_decoder_layers=_layer_count(keys, PREDICTOR + 'transformer.decoder.layers.') or None, hidden_dim=hidden,
        pixel_decoder='TransformerEncoderPixelDecoder' if with_encoder else 'BasePixelDecoder',
        num_encoder_layers=_layer_count(keys, PIXEL_DECODER + 'transformer.encoder.layers.'),
        num_predictor_encoder_layers=_layer_count(keys, PREDICTOR + 'transformer.encoder.layers.'),
        num_levels=max([int(m.group(1)) for m in (re.match(re.escape(PIXEL_DECODER) + r'layer_(\d+)\.', k)
                                                   for k in keys) if m], default=None),
        decoder_input_proj=PREDICTOR + 'input_proj.weight' in state, memory_channels=memory,
        transformer_in_feature=('transformer_encoder'
                                if with_encoder and memory == rows(PIXEL_DECODER + 'input_proj.weight') else 'res5'))
    return summary


def maskformer_head_settings(summary: Mapping[str, object]) -> str:
    """The ``M2FMaskFormerHead`` settings a MaskFormer checkpoint needs (from :func:`d2_head_summary`)."""
    encoder = (f'dict(num_layers={summary["num_encoder_layers"]}, ...)'
               if summary['pixel_decoder'] == 'TransformerEncoderPixelDecoder' else 'None')
    # our head adds input_proj by itself when the memory width differs from D; same width needs the flag
    enforce = bool(summary['decoder_input_proj']) and summary['memory_channels'] == summary['hidden_dim']
    return (f'M2FMaskFormerHead: num_queries={summary["num_queries"]}, transformer_decoder.num_layers='
            f'{summary["num_decoder_layers"]}, pixel_decoder.encoder={encoder}, enforce_decoder_input_project='
            f'{enforce}, {summary["num_classes"]} classes (things + stuff, or the seg head\'s num_classes)')


def _maskformer_key(key: str) -> str:
    """A MaskFormer key in the current layout (pixel decoder under ``pixel_decoder.``)."""
    if key.startswith(D2_HEAD_PREFIX):
        rest = key[len(D2_HEAD_PREFIX):]
        if _MF_PIXEL_DECODER_CHILDREN.match(rest):
            return PIXEL_DECODER + rest
    return key


# --------------------------------------------------------------------------- loading
def load_d2_checkpoint(path: str, *, trust_pickle: bool = False) -> object:
    """Read a detectron2 ``.pkl`` (pickle of numpy arrays) or ``.pth`` (torch zip) file.

    Without ``trust_pickle`` only numpy arrays / tensors and plain containers are accepted (no code
    runs while loading). Returns the raw object; pass it to :func:`extract_d2_weights`.

    Raises:
        CheckpointFormatError: truncated / corrupt file, or an object the safe loader refuses.
    """
    if zipfile.is_zipfile(path):
        try:
            return load_local_checkpoint(path, map_location='cpu', trust_pickle=trust_pickle)
        except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
            raise CheckpointFormatError(f'{path}: could not load the torch checkpoint '
                                        f'({type(err).__name__}: {err}).{_trust_hint(err, trust_pickle)}') from err
    with open(path, 'rb') as f:
        if f.read(2) == b'PK':  # a torch zip file without its central directory: cut off while written or copied
            raise CheckpointFormatError(f'{path}: the torch checkpoint is truncated (its zip directory is missing). '
                                        'Download or copy it again.')
    try:
        with open(path, 'rb') as f:
            if trust_pickle:
                return pickle.load(f, encoding='latin1')
            return RestrictedUnpickler(f, encoding='latin1').load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, OverflowError, MemoryError) as err:
        if isinstance(err, RefusedGlobalError):
            raise CheckpointFormatError(f'{path}: {err} detectron2 .pkl checkpoints hold only numpy arrays.'
                                        f'{_trust_hint(err, trust_pickle)}') from err
        raise CheckpointFormatError(f'{path}: not a readable checkpoint - the pickle is truncated or corrupt '
                                    f'({type(err).__name__}: {err}). Re-download it (the model zoo file names '
                                    'end in the first 6 hex digits of their md5).') from err


def _trust_hint(err: BaseException, trust_pickle: bool) -> str:
    """The --trust-pickle hint, only when the safe loader refused what may be a plain data class."""
    name = None if trust_pickle else refused_data_class(err)
    return f' If you trust the file and its {name} class, rerun with --trust-pickle.' if name else ''


def extract_d2_weights(obj: object, source: str = 'checkpoint') -> Dict[str, object]:
    """The ``{name: array}`` dict of a loaded detectron2 checkpoint, or a clear error.

    Accepts ``{'model': {...}, ...}`` (detectron2 ``.pkl`` / ``.pth``) or a bare state dict.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f'{source}: expected a dict with a "model" entry of weights, '
                                    f'found a {type(obj).__name__}')
    if isinstance(obj.get('model'), Mapping):
        weights = obj['model']
    elif isinstance(obj.get('state_dict'), Mapping):
        inner = obj['state_dict']
        if any(str(k).startswith(WEIGHT_HEAD_PREFIXES) for k in inner):
            raise CheckpointFormatError(
                f'{source}: this is an OpenMMLab checkpoint (state_dict with '
                f'{"/".join(WEIGHT_HEAD_PREFIXES)} keys), not a detectron2 one; for mmdet Mask2Former use '
                'tools/model_converters/mmdet_to_m2f.py, m2f_mm checkpoints load directly')
        weights = inner
    else:
        weights = obj
    if not any(str(k).startswith(D2_HEAD_PREFIX) for k in weights):
        found = (f'top-level entries {sorted(map(str, obj))[:10]}' if weights is obj
                 else f'{len(weights)} weights: {_prefix_summary(weights)}')
        raise CheckpointFormatError(f'{source}: not a Mask2Former / MaskFormer (detectron2) checkpoint - no '
                                    f'"{D2_HEAD_PREFIX}*" weights; found {found}')
    return dict(weights)


# --------------------------------------------------------------------------- conversion
def _count_mismatch_message(src_key: str, src_shape, dst_key: str, dst_shape, cfg_path: str,
                            source: str) -> Optional[str]:
    if src_key == PREDICTOR + 'class_embed.weight' and src_shape[1:] == dst_shape[1:]:
        n_src, n_dst = src_shape[0] - 1, dst_shape[0] - 1
        if cfg_path.endswith('decode_head'):
            fix = f'--cfg-options {cfg_path}.num_classes={n_src} (and the criterion\'s num_classes)'
        else:
            fix = (f'--cfg-options {cfg_path}.num_things_classes=<things> {cfg_path}.num_stuff_classes=<stuff> '
                   f'with things + stuff = {n_src} (also in model.panoptic_fusion_head, and {cfg_path}.criterion.'
                   f'num_classes for training; COCO panoptic is 80 + 53, COCO instance 80 + 0)')
        return (f'{source}: the checkpoint has {n_src} classes ({src_key} has {src_shape[0]} rows incl. no-object) '
                f'but the config has {n_dst} ({dst_key} {list(dst_shape)}). Use the config that matches the '
                f'checkpoint or set {fix}.')
    queries = (PREDICTOR + 'query_feat.weight', PREDICTOR + 'query_embed.weight')
    if src_key in queries and src_shape[1:] == dst_shape[1:]:
        return (f'{source}: the checkpoint has {src_shape[0]} queries ({src_key} {list(src_shape)}) but the config '
                f'has {dst_shape[0]} ({dst_key} {list(dst_shape)}). Set --cfg-options '
                f'{cfg_path}.num_queries={src_shape[0]}.')
    return None


def _maskformer_table(tensors: Mapping[str, Tensor], head_keys: Sequence[str], source: str) -> List[Tuple[str, str]]:
    """The MaskFormer head table for this file, or a one-line error for what m2f_mm cannot hold."""
    keys = [_maskformer_key(k) for k in head_keys]
    predictor_encoder = [k for k in keys if k.startswith(PREDICTOR + 'transformer.encoder.')]
    if predictor_encoder:
        layers = _layer_count(predictor_encoder, PREDICTOR + 'transformer.encoder.layers.')
        what = (f'its predictor has a transformer encoder of {layers} layer(s) (MASK_FORMER.ENC_LAYERS: {layers})'
                if layers else 'it was trained with MASK_FORMER.PRE_NORM: True (predictor.transformer.encoder.norm)')
        raise CheckpointFormatError(
            f'{source}: cannot convert this MaskFormer checkpoint: {what}, which no official config uses and '
            'M2FMaskFormerHead does not have; only ENC_LAYERS: 0, PRE_NORM: False checkpoints convert '
            '(the pixel decoder\'s encoder, TransformerEncoderPixelDecoder, is supported).')
    if any(k.startswith(PIXEL_DECODER + 'transformer.encoder.norm.') for k in keys):
        raise CheckpointFormatError(f'{source}: cannot convert this MaskFormer checkpoint: its pixel decoder\'s '
                                    'encoder is pre-norm (PRE_NORM: True, pixel_decoder.transformer.encoder.norm); '
                                    "M2FMaskFormerHead's encoder is post-norm, as in every official config.")
    if PREDICTOR + 'class_embed.weight' not in keys:
        raise CheckpointFormatError(f'{source}: the MaskFormer predictor has no class_embed - a PerPixelBaseline+ '
                                    'checkpoint (mask classification off), which m2f_mm has no model for.')
    summary = d2_head_summary(tensors)
    if summary['pixel_decoder'] == 'TransformerEncoderPixelDecoder' and summary['transformer_in_feature'] == 'res5':
        raise CheckpointFormatError(
            f'{source}: cannot convert this MaskFormer checkpoint: its pixel decoder has a transformer encoder but '
            f'the decoder reads res5 (predictor.input_proj takes {summary["memory_channels"]} channels); '
            'M2FMaskFormerHead feeds the encoder output to the decoder (TRANSFORMER_IN_FEATURE: transformer_encoder).')
    with_encoder = summary['pixel_decoder'] == 'TransformerEncoderPixelDecoder'
    return MASKFORMER_HEAD_TABLE + maskformer_fpn_table(summary['num_levels'] or 0, with_encoder)


def _target_kind(target_state: Mapping[str, object], prefix: str) -> Optional[str]:
    keys = list(target_state)
    if any(k.startswith((prefix + 'pixel_decoder.last_feat_conv.', prefix + 'pixel_decoder.encoder_out_proj.'))
           for k in keys):
        return MASKFORMER
    if prefix + 'query_feat.weight' in target_state:
        return MASK2FORMER
    return None


def _maskformer_pixel_decoder_hint(summary: Mapping[str, object], target_state: Mapping[str, object], prefix: str,
                                   cfg_path: str) -> str:
    """Why a MaskFormer checkpoint's pixel decoder does not fit the config's, or ''."""
    target_encoder = any(k.startswith(prefix + 'pixel_decoder.encoder_out_proj.') for k in target_state)
    source_encoder = summary['pixel_decoder'] == 'TransformerEncoderPixelDecoder'
    n_source = summary['num_encoder_layers']
    if source_encoder and not target_encoder:
        return (f' (the checkpoint\'s pixel decoder has a {n_source}-layer transformer encoder, the config\'s has '
                f'none: set {cfg_path}.pixel_decoder.encoder=dict(num_layers={n_source}, ...))')
    if target_encoder and not source_encoder:
        return (f' (the checkpoint\'s pixel decoder is BasePixelDecoder, without an encoder: set '
                f'{cfg_path}.pixel_decoder.encoder=None)')
    n_target = _layer_count(target_state, prefix + 'pixel_decoder.encoder.layers.')
    if source_encoder and n_source != n_target:
        return (f' (the checkpoint\'s pixel decoder encoder has {n_source} layers, the config\'s {n_target}: set '
                f'{cfg_path}.pixel_decoder.encoder.num_layers={n_source})')
    return ''


def convert_d2_checkpoint(d2_state: Mapping[str, object], *, target_state: Optional[Mapping[str, Tensor]] = None,
                          partial: bool = False, head_prefix: Optional[str] = None,
                          source: str = 'checkpoint') -> ConversionResult:
    """detectron2 Mask2Former or MaskFormer weights -> m2f_mm state dict (the kind is read off the keys,
    :func:`d2_model_kind`; MaskFormer goes to the ``M2FMaskFormerHead`` layout).

    Args:
        d2_state: detectron2 ``{name: np.ndarray | Tensor}`` (the ``'model'`` entry of the file).
        target_state: the model's ``state_dict()``. When given: every shape must match (error
            names both keys and both shapes; class / query count mismatches say which config
            option to set), every converted tensor must exist in the model and every target
            key must be filled, unless ``partial``.
        partial: with a target, allow unfilled target keys (listed in ``missing_target_keys``)
            and source tensors the model has no place for (listed in ``unmapped_source_keys``).
            Shape mismatches always fail.
        head_prefix: ``'panoptic_head.'`` (M2FDetector) or ``'decode_head.'`` (mmseg
            EncoderDecoder); inferred from ``target_state``, else ``'panoptic_head.'``.
        source: name used in error messages (the file name).

    Returns:
        :class:`ConversionResult`. ``unmapped_source_keys`` always lists every source key whose
        tensor did not make it into ``state_dict`` (without a target this is never an error).

    Raises:
        CheckpointFormatError: no ``sem_seg_head.*`` weights (not a Mask2Former / MaskFormer
            checkpoint), or a MaskFormer variant m2f_mm has no model for (a predictor encoder,
            pre-norm, no classifier, an encoder whose output the decoder does not read).
        CheckpointMismatchError: shape mismatch, or (unless ``partial``) missing target keys /
            source tensors without a place in the model.
    """
    if not isinstance(d2_state, Mapping) or not any(str(k).startswith(D2_HEAD_PREFIX) for k in d2_state):
        d2_state = extract_d2_weights(d2_state, source)  # {'model': ...} wrapper, or a clear error
    prefix = _infer_head_prefix(target_state, head_prefix)
    cfg_path = 'model.' + prefix.rstrip('.')

    tensors: 'OrderedDict[str, Tensor]' = OrderedDict()
    unmapped: List[str] = []
    dropped: List[str] = []
    for key, value in d2_state.items():
        key = str(key)
        if key in D2_DROPPED_KEYS:
            dropped.append(key)
            continue
        try:
            tensor = _as_tensor(value)
        except (TypeError, ValueError):  # e.g. object arrays
            tensor = None
        if tensor is None:
            unmapped.append(f'{key} (not an array: {type(value).__name__})')
            continue
        tensors[key] = tensor

    kind = d2_model_kind(tensors)
    head_keys = [k for k in tensors if k.startswith(D2_HEAD_PREFIX)]
    backbone_keys = [k for k in tensors if k.startswith('backbone.')]
    unmapped += [k for k in tensors if not k.startswith((D2_HEAD_PREFIX, 'backbone.'))]
    if PREDICTOR + 'weight' in tensors:
        raise CheckpointFormatError(f'{source}: sem_seg_head.predictor is a single conv - a per-pixel baseline '
                                    '(PerPixelBaselineHead), not a MaskFormer / Mask2Former; m2f_mm has no such model.')

    # head
    if kind == MASKFORMER:
        table = _maskformer_table(tensors, head_keys, source)
        # the table is written for the current key layout; renamed keys remember their file name
        current = {_maskformer_key(k): k for k in head_keys}
        renamed_current, rest = rename_keys(list(current), compile_table(prefixed(table, '', prefix)))
        renamed = {current[k]: dst for k, dst in renamed_current.items()}
        rest = [current[k] for k in rest]
    else:
        num_fpn = len({m.group(1) for m in (re.match(re.escape(PIXEL_DECODER) + r'adapter_(\d+)\.', k)
                                            for k in head_keys) if m})
        renamed, rest = rename_keys(head_keys, compile_table(prefixed(HEAD_TABLE + fpn_table(num_fpn), '', prefix)))
    unmapped += rest
    out: Dict[str, Tensor] = OrderedDict()  # our key -> tensor
    origin: Dict[str, str] = {}  # our key -> source key
    for src, dst in renamed.items():
        out[dst], origin[dst] = tensors[src], src

    # backbone
    if any(k.startswith('backbone.patch_embed.') for k in backbone_keys):
        swin = convert_swin(OrderedDict((k, tensors[k]) for k in backbone_keys))
        # swin_converter renames one to one, in order; zip recovers the source of each key.
        assert len(swin) == len(backbone_keys), 'swin_converter dropped keys'
        for src, (dst, value) in zip(backbone_keys, swin.items()):
            out[dst], origin[dst] = value, src
    elif backbone_keys:
        deep = 'backbone.stem.conv2.weight' in tensors
        renamed, rest = rename_keys(backbone_keys, compile_table(resnet_table(deep)))
        unmapped += rest
        for src, dst in renamed.items():
            out[dst], origin[dst] = tensors[src], src
        for dst in [k for k in out if k.startswith('backbone.') and k.endswith('.running_var')]:
            nbt = dst[:-len('running_var')] + 'num_batches_tracked'
            if nbt not in out and (target_state is None or nbt in target_state):
                out[nbt], origin[nbt] = torch.tensor(0, dtype=torch.long), '<filled: FrozenBN has no counter>'

    if target_state is None:
        return ConversionResult(OrderedDict(out), unmapped, [], dropped)

    # checks against the model
    errors = []
    for dst, value in out.items():
        if dst in target_state and tuple(value.shape) != tuple(target_state[dst].shape):
            src = origin[dst]
            special = _count_mismatch_message(src, tuple(value.shape), dst, tuple(target_state[dst].shape),
                                              cfg_path, source)
            if special:
                raise CheckpointMismatchError(special)
            errors.append(f'  {src} {list(value.shape)} -> {dst} {list(target_state[dst].shape)}')
    if errors:
        raise CheckpointMismatchError(f'{source}: {len(errors)} shape mismatch(es) between the checkpoint and the '
                                      f'model built from the config (source key [shape] -> target key [shape]):\n'
                                      + '\n'.join(errors) + '\nUse the config that matches the checkpoint.')
    absent = [dst for dst in out if dst not in target_state]
    unmapped += [f'{origin[dst]} -> {dst}' for dst in absent if not origin[dst].startswith('<')]
    missing = [k for k in target_state if k not in out]
    if not partial and (missing or unmapped):
        parts = []
        if missing:
            parts.append(f'{len(missing)} model weight(s) not in the checkpoint:\n    '
                         + '\n    '.join(missing[:40]) + ('\n    ...' if len(missing) > 40 else ''))
        if unmapped:
            parts.append(f'{len(unmapped)} checkpoint weight(s) with no place in the model:\n    '
                         + '\n    '.join(unmapped[:40]) + ('\n    ...' if len(unmapped) > 40 else ''))
        hint = ''
        summary = d2_head_summary(tensors)
        n_target = _layer_count(target_state, prefix + 'transformer_decoder.layers.')
        n_source = summary['num_decoder_layers']
        target_kind = _target_kind(target_state, prefix)
        if target_kind is not None and target_kind != kind:
            hint = (f' (the checkpoint is {kind}, the config builds {target_kind}: use '
                    + ('an M2FMaskFormerHead config' if kind == MASKFORMER else 'an M2FHead config') + ')')
        elif kind == MASKFORMER and _maskformer_pixel_decoder_hint(summary, target_state, prefix, cfg_path):
            hint = _maskformer_pixel_decoder_hint(summary, target_state, prefix, cfg_path)
        elif any(k.startswith('backbone.') for k in missing) and any(k.startswith('backbone.') for k in unmapped):
            hint = (f' (the backbone differs: the checkpoint\'s is {backbone_name(d2_state)}, see the config\'s '
                    'model.backbone)')
        elif n_source and n_target and n_source != n_target:
            hint = (f' (the checkpoint has {n_source} decoder layers, the config {n_target}: set '
                    f'{cfg_path}.transformer_decoder.num_layers={n_source})')
        elif any(k.startswith((prefix + 'input_projs.', prefix + 'input_proj.')) or '.predictor.input_proj.' in k
                 for k in missing + unmapped):
            hint = (f' (the decoder input projections differ: set {cfg_path}.enforce_decoder_input_project to '
                    'match the checkpoint)')
        raise CheckpointMismatchError(f'{source}: the checkpoint does not fit the model{hint}.\n  '
                                      + '\n  '.join(parts) + '\nUse the matching config, or --partial to '
                                      'convert anyway and list what is left out.')
    ordered = OrderedDict((k, out[k]) for k in target_state if k in out)
    return ConversionResult(ordered, unmapped, missing, dropped)


def to_d2_layout(state: Mapping[str, Tensor], *, head_prefix: Optional[str] = None,
                 no_object_weight: Optional[float] = 0.1) -> 'OrderedDict[str, Tensor]':
    """Inverse of :func:`convert_d2_checkpoint`: our state dict -> detectron2 names / layouts.

    Handles the head (M2FHead -> Mask2Former, M2FMaskFormerHead -> MaskFormer), mmdet/mmseg
    ``ResNet`` (incl. ResNetV1c deep stem) and ``SwinTransformer``.
    BN ``num_batches_tracked`` counters are dropped (detectron2's FrozenBN has none). With
    ``no_object_weight``, adds ``criterion.empty_weight`` as detectron2 saves it (ones, last
    entry = no_object_weight).

    Raises:
        ValueError: keys it has no rule for (listed).
    """
    prefix = _infer_head_prefix(state, head_prefix)
    head = [k for k in state if k.startswith(prefix)]
    backbone = [k for k in state if k.startswith('backbone.')]
    others = [k for k in state if k not in set(head) | set(backbone)]
    num_fpn = _layer_count(head, prefix + 'pixel_decoder.lateral_convs.')
    if _target_kind(state, prefix) == MASKFORMER:
        with_encoder = any(k.startswith(prefix + 'pixel_decoder.encoder_out_proj.') for k in head)
        table = MASKFORMER_HEAD_TABLE + maskformer_fpn_table(num_fpn + 1, with_encoder)
    else:
        table = HEAD_TABLE + fpn_table(num_fpn)
    renamed, rest = rename_keys(head, compile_table(prefixed(table, '', prefix), reverse=True))
    out = OrderedDict((dst, state[src]) for src, dst in renamed.items())
    if 'backbone.patch_embed.projection.weight' in state:
        out.update(swin_to_d2(OrderedDict((k, state[k]) for k in backbone)))
    elif backbone:
        deep = 'backbone.stem.0.weight' in state
        keys = [k for k in backbone if not k.endswith('.num_batches_tracked')]
        renamed, rest_bb = rename_keys(keys, compile_table(resnet_table(deep), reverse=True))
        rest += rest_bb
        out.update((dst, state[src]) for src, dst in renamed.items())
    rest += others
    if rest:
        raise ValueError(f'to_d2_layout: no detectron2 name for {len(rest)} key(s): {rest[:20]}')
    if no_object_weight is not None and prefix + 'class_embed.weight' in state:
        weight = torch.ones(state[prefix + 'class_embed.weight'].shape[0])
        weight[-1] = no_object_weight
        out['criterion.empty_weight'] = weight
    return out
