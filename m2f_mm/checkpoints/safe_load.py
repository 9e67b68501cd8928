"""Loading checkpoints without running code: the one restricted unpickler of m2f_mm.

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.x calls ``torch.load``
without that argument and pickles its ``MessageHub`` into every checkpoint: ``HistoryBuffer`` objects
with numpy arrays and *bound methods* (``getattr(HistoryBuffer, 'min')``), which the safe loader
refuses — so ``tools/test.py`` and ``--resume`` fail on checkpoints the runner just wrote.

The usual fix, ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, runs any pickle. Instead, checkpoints (torch zip
files and detectron2's ``.pkl`` pickles alike) are read with an unpickler that admits exactly: torch's own safe globals (and whatever the user added
with ``torch.serialization.add_safe_globals``), numpy arrays / dtypes / scalars, plain containers, mmengine's
``HistoryBuffer``, and ``getattr`` restricted to ``HistoryBuffer``'s statistics methods. Anything
else (``os.system``, ``getattr(array, 'tofile')``, ...) is refused with an error naming the global
(:class:`RefusedGlobalError`; allow-listing is suggested only for what may be a plain data class,
never for ``os.system`` and its kind). Globals the user allowed with
``torch.serialization.add_safe_globals`` are honoured.
"""
import codecs
import collections
import contextlib
import os.path as osp
import pickle
import sys
import types
from typing import Callable, Dict, Iterator, Optional

import numpy as np
import torch

from .safe_types import from_weights_only

_HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'mean', 'current'})


def _qualified(obj: object) -> str:
    return f'{obj.__module__}.{obj.__qualname__}'


def mmengine_checkpoint_globals() -> Dict[str, object]:
    """'module.name' -> object for what checkpoints hold besides tensors: numpy arrays, containers, and
    the classes of an mmengine checkpoint's message hub."""
    from mmengine.logging.history_buffer import HistoryBuffer
    core = getattr(np, '_core', None) or np.core  # numpy 2 renamed numpy.core to numpy._core
    objects = [HistoryBuffer, np.ndarray, np.dtype]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25 pickles dtypes by their DType class
    if dtypes is not None:
        objects += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    allowed = {_qualified(obj): obj for obj in objects}
    for module in ('numpy.core', 'numpy._core'):  # written by numpy 1 or 2
        allowed[f'{module}.multiarray._reconstruct'] = core.multiarray._reconstruct
        allowed[f'{module}.multiarray.scalar'] = core.multiarray.scalar
        allowed[f'{module}.numeric._frombuffer'] = core.numeric._frombuffer  # pickle protocol 5
    # plain containers and how pickle protocol <= 2 (detectron2's .pkl files) stores bytes
    allowed.update({'collections.OrderedDict': collections.OrderedDict, '_codecs.encode': codecs.encode})
    return allowed


def _history_buffer_getattr(obj: object, name: str) -> object:
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'checkpoint asks for getattr({obj!r}, {name!r}); only HistoryBuffer statistics '
                                 'methods are allowed')


def _user_safe_globals() -> Dict[str, object]:
    """What the user allowed with ``torch.serialization.add_safe_globals`` ('module.name' -> object)."""
    get = getattr(torch.serialization, 'get_safe_globals', None)
    allowed = {}
    for entry in (get() if get is not None else []):
        obj, name = entry if isinstance(entry, tuple) else (entry, None)
        allowed[name or f'{obj.__module__}.{getattr(obj, "__qualname__", obj.__name__)}'] = obj
        if name is None and hasattr(obj, '__name__'):
            allowed[f'{obj.__module__}.{obj.__name__}'] = obj
    return allowed


# Modules whose functions and classes run commands, open files or evaluate code when called. A refused
# global from one of them is never a data class, whatever its name looks like (protocol-2 pickles name
# os as posix / nt, subprocess as commands, builtins as __builtin__).
_CODE_RUNNING_MODULES = frozenset({
    'os', 'posix', 'nt', 'subprocess', 'commands', 'builtins', '__builtin__', 'sys', 'shutil', 'pty', 'socket',
    'importlib', 'runpy', 'pickle', '_pickle', 'cPickle', 'marshal', 'ctypes', 'code', 'codeop', 'types',
    'functools', 'operator', 'io', '_io', 'signal', 'multiprocessing', 'threading', '_thread', 'asyncio',
    'webbrowser', 'pdb', 'bdb', 'timeit', 'platform', 'tempfile', 'glob', 'pathlib', 'inspect', 'ast',
    'zipimport', 'pkgutil', 'site', 'sysconfig', 'distutils', 'setuptools', 'pip', 'torch', 'numpy'})


def is_plain_data_class(global_name: str) -> bool:
    """Whether a refused pickle global ('module.Name') can be a user's plain data class: a class-like
    name outside the standard modules that run code (``posix.system``, ``subprocess.Popen``,
    ``builtins.eval`` and the like are not). Nothing is imported to decide."""
    module, _, name = global_name.rpartition('.')
    if not module or not name:
        return False
    root = module.split('.')[0]
    if root in _CODE_RUNNING_MODULES or root.startswith('_') and root != '__main__':
        return False
    loaded = getattr(sys.modules.get(module), name, None)  # only what is imported already
    if loaded is not None:
        return isinstance(loaded, type) and not issubclass(loaded, BaseException)
    return name[:1].isupper() and name.isidentifier() and not name.isupper()


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list; ``global_name`` is 'module.name'."""

    def __init__(self, global_name: str) -> None:
        self.global_name = global_name
        # Never suggest allow-listing a name that may run code (os.system): only a possible data class.
        hint = ('If you wrote it yourself and it holds your own plain data classes, allow exactly those classes '
                'with torch.serialization.add_safe_globals([...]).' if is_plain_data_class(global_name) else
                f'{global_name} is not a data class: unpickling it would run it.')
        super().__init__(
            f'refusing to unpickle {global_name!r}: a checkpoint holds tensors, numpy arrays and mmengine log '
            'buffers, and this file asks for something else, which could run code while loading. Do not load '
            f'files you do not trust. {hint}')

    def __reduce__(self):
        return type(self), (self.global_name, )


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only the allow-list described in the module docstring, plus what the
    user allowed with ``torch.serialization.add_safe_globals``."""

    def find_class(self, module: str, name: str) -> object:
        key = f'{module}.{name}'
        if key in ('builtins.getattr', '__builtin__.getattr'):
            return _history_buffer_getattr
        from torch._weights_only_unpickler import _get_allowed_globals
        allowed = {**_get_allowed_globals(), **mmengine_checkpoint_globals(), **_user_safe_globals()}
        if key in allowed:
            return allowed[key]
        raise RefusedGlobalError(key)


def refused_data_class(err: BaseException) -> Optional[str]:
    """The global a :class:`RefusedGlobalError` in ``err`` (or its causes) refused, when it may be a plain
    data class (:func:`is_plain_data_class`); None otherwise (a file cut short, ``posix.system``, ...)."""
    while err is not None and not isinstance(err, RefusedGlobalError):
        err = err.__cause__ or err.__context__
    return err.global_name if err is not None and is_plain_data_class(err.global_name) else None


restricted_pickle = types.SimpleNamespace(Unpickler=RestrictedUnpickler, __name__='m2f_mm_restricted_pickle',
                                          load=lambda f, **kw: RestrictedUnpickler(f, **kw).load())


def load_local_checkpoint(filename: str, map_location=None, *, trust_pickle: bool = False) -> dict:
    """mmengine's ``load_from_local`` with the restricted unpickler instead of torch's default; message-hub
    buffers and numpy values stored as tensors (``safe_types.py``) come back as they were saved.

    Errors are torch's and the unpickler's, as raised (the converters word their own; the runner and
    inference read through ``loading.load_checkpoint_file``, one line each). ``trust_pickle`` loads
    anything with plain ``torch.load`` (only for files you made or know)."""
    if trust_pickle:
        return torch.load(filename, map_location=map_location, weights_only=False)
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    checkpoint = torch.load(filename, map_location=map_location, weights_only=False, pickle_module=restricted_pickle)
    return from_weights_only(checkpoint)


def load_pickle(path: str) -> object:
    """A raw pickle file (detectron2 ``model_final_*.pkl``: numpy arrays in dicts) through the same allow-list."""
    with open(path, 'rb') as f:
        return RestrictedUnpickler(f, encoding='latin1').load()


def install_checkpoint_loader() -> Callable:
    """Make mmengine load local checkpoints with :func:`load_local_checkpoint` (idempotent).

    Opt-in, process-wide: ``M2FRunner`` calls it (so backbone ``init_cfg=Pretrained`` files written by
    mmengine load too); ``import m2f_mm`` does not.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_local_checkpoint)
    return load_local_checkpoint


@contextlib.contextmanager
def safe_local_loading() -> Iterator[None]:
    """Within the block, mmengine loads local checkpoints with :func:`load_local_checkpoint`; its own
    loader is back afterwards (for tools that call mmengine's loading, e.g. the inferencers)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    before = CheckpointLoader._schemes.get('')
    install_checkpoint_loader()
    try:
        yield
    finally:
        CheckpointLoader._schemes[''] = before
