"""Checkpoints in the types ``torch.load(weights_only=True)`` accepts, and back.

torch >= 2.6 loads with ``weights_only=True`` by default: tensors, numbers, strings, and dicts / lists /
tuples of them. mmengine's runner also stores its message hub (``HistoryBuffer`` objects holding numpy
arrays), numpy scalars (``eta``) and M2FRunner the numpy random state (a tuple with an ndarray), which
that loader refuses, so mmdet's / mmseg's inferencers and tools could not read the checkpoints the
runner writes. :func:`to_weights_only` replaces each of those by a tagged dict of tensors and plain
values before the checkpoint is written (``M2FRunner``); :func:`from_weights_only` rebuilds them
exactly (same dtype, shape and values) when m2f_mm's loader (``safe_load.load_local_checkpoint``)
reads the file, so ``--resume`` restores the message hub and random states as they were. Containers
nothing changes in are kept as they are (a state dict keeps its ``_metadata``).
"""
from collections import OrderedDict
from typing import Optional

import numpy as np
import torch

TYPE_KEY = '__m2f_type__'
NDARRAY = 'numpy.ndarray'
HISTORY_BUFFER = 'mmengine.HistoryBuffer'


def _history_buffer_class():
    from mmengine.logging.history_buffer import HistoryBuffer
    return HistoryBuffer


def encode_array(value) -> Optional[dict]:
    """A numpy array or scalar as ``{TYPE_KEY, dtype, shape, scalar, data: Tensor[N]}``; None for object or
    structured dtypes (left as they are)."""
    scalar = isinstance(value, np.generic)
    array = np.asarray(value)
    if array.dtype.hasobject or array.dtype.names is not None:
        return None
    flat = np.ascontiguousarray(array).reshape(-1)
    try:
        data = torch.from_numpy(flat.copy())
    except (TypeError, ValueError):  # a dtype torch has no tensor type for (datetime, big-endian): its bytes
        data = torch.from_numpy(flat.view(np.uint8).copy())
    return {TYPE_KEY: NDARRAY, 'dtype': array.dtype.str, 'shape': list(array.shape), 'scalar': scalar, 'data': data}


def decode_array(tag: dict):
    """Inverse of :func:`encode_array`.

    Raises:
        ValueError: the tag names an object dtype (its bytes would be read as pointers).
    """
    dtype = np.dtype(tag['dtype'])
    if dtype.hasobject:
        raise ValueError(f'refusing to rebuild a numpy array of dtype {tag["dtype"]!r} from a checkpoint')
    flat = tag['data'].numpy()
    if flat.dtype != dtype:
        flat = flat.view(dtype)
    array = flat.reshape(tag['shape']).copy()
    return array[()] if tag['scalar'] else array


def _encode_history(buffer) -> dict:
    log_history, count_history = buffer.data
    return {TYPE_KEY: HISTORY_BUFFER, 'log_history': encode_array(log_history),
            'count_history': encode_array(count_history), 'max_length': int(buffer.max_length)}


def _decode_history(tag: dict):
    return _history_buffer_class()(decode_array(tag['log_history']), decode_array(tag['count_history']),
                                   int(tag['max_length']))


def _map_children(obj, convert):
    """``obj`` with ``convert`` applied to each element of a dict / OrderedDict / list / tuple; the very
    same object when nothing changed."""
    if type(obj) in (dict, OrderedDict):
        items = [(key, convert(value)) for key, value in obj.items()]
        if all(new is old for (_, new), old in zip(items, obj.values())):
            return obj
        return type(obj)(items)
    if type(obj) in (list, tuple):
        values = [convert(value) for value in obj]
        if all(new is old for new, old in zip(values, obj)):
            return obj
        return type(obj)(values)
    return obj


def to_weights_only(obj):
    """``obj`` with HistoryBuffers, numpy arrays and numpy scalars replaced by tagged dicts of tensors."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (np.ndarray, np.generic)):
        tag = encode_array(obj)
        return obj if tag is None else tag
    if isinstance(obj, _history_buffer_class()):
        return _encode_history(obj)
    return _map_children(obj, to_weights_only)


def from_weights_only(obj):
    """Inverse of :func:`to_weights_only`; anything else (e.g. a checkpoint written before it) is unchanged."""
    if isinstance(obj, dict) and TYPE_KEY in obj:
        kind = obj[TYPE_KEY]
        if kind == NDARRAY:
            return decode_array(obj)
        if kind == HISTORY_BUFFER:
            return _decode_history(obj)
    return _map_children(obj, from_weights_only)


def make_weights_only(checkpoint: dict) -> None:
    """:func:`to_weights_only` on each entry of ``checkpoint``, in place (mmengine's hooks see the dict)."""
    for key, value in list(checkpoint.items()):
        checkpoint[key] = to_weights_only(value)
