"""Files that are either complete or absent: what a crash or a full disk can do to a checkpoint.

A checkpoint is written to a temporary file next to its final name, flushed and fsynced, renamed
into place (a rename within one directory is atomic) and the directory is fsynced. A process killed
at any moment leaves the previous file, or the new one, under the final name; never a part of it.
A write that fails (ENOSPC, EFBIG, EIO) removes the temporary file and raises ``OSError``;
:func:`write_failure_message` turns it into the one line the run stops with.

:class:`DurableLocalBackend` is mmengine's ``LocalBackend`` with a durable ``put``; ``M2FRunner``
saves its checkpoints through it.
"""
import contextlib
import os
import os.path as osp
import re
import shutil
from typing import BinaryIO, Callable, Iterable, List, Union

import torch
from mmengine.fileio import LocalBackend, register_backend

TEMP_SUFFIX = '.partial'
# '.NAME.PID.partial', NAME being the final file name: found again by remove_stale_temp_files
_TEMP_NAME = re.compile(r'^\.(?P<name>.+)\.(?P<pid>\d+)' + re.escape(TEMP_SUFFIX) + '$')


def temp_path(path: str) -> str:
    """The temporary name ``path`` is written under before the rename (same directory)."""
    directory, name = osp.split(osp.abspath(path))
    return osp.join(directory, f'.{name}.{os.getpid()}{TEMP_SUFFIX}')


def fsync_directory(directory: str) -> None:
    """Make a rename or unlink in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(f: BinaryIO, data: bytes) -> None:
    """Write all of ``data`` to ``f`` (a separate function so that tests can slow it down)."""
    f.write(data)


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Create or replace ``path`` with what ``write(file)`` writes, all or nothing.

    Raises:
        OSError (or whatever ``write`` raises): ``path`` is unchanged and the temporary file is gone.
    """
    path = osp.abspath(path)
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # umask applies, as with open()
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    fsync_directory(directory)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """:func:`atomic_write` of ``data``."""
    atomic_write(path, lambda f: write_bytes(f, data))


def atomic_write_text(path: str, text: str) -> None:
    """:func:`atomic_write` of ``text`` (utf-8), e.g. mmengine's ``last_checkpoint`` file."""
    atomic_write_bytes(path, text.encode('utf-8'))


def atomic_save(obj: object, path: str) -> None:
    """``torch.save(obj, path)``, all or nothing."""
    atomic_write(path, lambda f: torch.save(obj, f))


def remove_durably(paths: Iterable[str]) -> List[str]:
    """Delete the files (or directories) ``paths`` that exist; returns those deleted."""
    removed = []
    for path in paths:
        if osp.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif osp.lexists(path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        else:
            continue
        removed.append(path)
    for directory in {osp.dirname(osp.abspath(p)) for p in removed}:
        fsync_directory(directory)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(directory: str) -> List[str]:
    """Delete the temporary files that killed writers left in ``directory``; returns their paths."""
    if not osp.isdir(directory):
        return []
    stale = []
    for name in os.listdir(directory):
        match = _TEMP_NAME.match(name)
        if match and not _alive(int(match['pid'])):
            stale.append(osp.join(directory, name))
    return remove_durably(stale)


def _size(num_bytes: int) -> str:
    return f'{num_bytes / 2**30:.2f} GiB' if num_bytes >= 2**30 else f'{num_bytes / 2**20:.1f} MiB'


def write_failure_message(path: str, err: BaseException) -> str:
    """The one line a run stops with when ``path`` could not be written."""
    directory = osp.dirname(osp.abspath(path))
    reason = getattr(err, 'strerror', None) or str(err) or type(err).__name__
    try:
        usage = shutil.disk_usage(directory)
        disk = f'{_size(usage.free)} free of {_size(usage.total)} on the disk of {directory}'
    except OSError:
        disk = f'the disk of {directory} cannot be read'
    return (f'could not write checkpoint {path} ({reason}; {disk}): the previous checkpoint and last_checkpoint '
            'are unchanged and the partial file was removed; free space there or point --work-dir at a larger '
            'disk, then continue with tools/train.py CONFIG --resume')


@register_backend('m2f_durable_local', force=True)
class DurableLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` / ``put_text`` are all or nothing (:func:`atomic_write`)."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write_bytes(str(filepath), obj)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike], encoding: str = 'utf-8') -> None:
        atomic_write_bytes(str(filepath), obj.encode(encoding))
