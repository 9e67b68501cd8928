"""Every error m2f_mm raises on purpose: one message naming the problem and the fix.

The ground floor of the package: it imports nothing, and every layer (config, models, datasets,
evaluation, engine, apis, tools) raises these.

Every tool's entry point (``tools/_env_guard.run_tool``: train.py, test.py, misc/, analysis_tools/,
dataset_converters/, deployment/, demo/) prints ``short_message(err)`` for these and exits with status 1
instead of a traceback; a config mistake raises ``M2FConfigError``, a ``ValueError`` too. A DataLoader worker
re-raises an exception in the main process as ``type(err)("Caught ... Original Traceback ... ")``,
so each class takes a single message argument and ``short_message`` finds our line again.
"""
import sys
from typing import Callable, Optional


class M2FError(RuntimeError):
    """Base class: the message is complete (what is wrong, where, and how to fix it)."""


class M2FBadSampleError(M2FError, ValueError):
    """A sample of the dataset cannot be loaded (file, image id and problem are named)."""


class M2FNonFiniteError(M2FError):
    """A loss term or the gradient norm is NaN/inf (iteration, terms and image paths are named)."""


class M2FCheckpointError(M2FError):
    """A checkpoint does not fit the model (keys, shapes and the config option or converter are named)."""


class M2FConfigError(M2FError, ValueError):
    """The config disagrees with the data or the model (the option to set is named)."""


class M2FLaunchError(M2FError):
    """A distributed launch cannot work as configured (backend, world size, port)."""


def short_message(err: BaseException) -> str:
    """The message of ``err`` without a DataLoader worker's wrapped traceback."""
    text = str(err)
    marker = f'{type(err).__name__}: '
    if 'Original Traceback' in text and marker in text:
        text = text[text.rindex(marker) + len(marker):]
    return text.strip()


def run_main(main: Callable[[], Optional[int]]) -> None:
    """Run a tool's ``main()``: an m2f_mm error ends the tool with its one-line message (``m2f_mm: ...``
    on stderr) and status 1 instead of a traceback; an int result is the exit status."""
    try:
        result = main()
    except M2FError as err:
        print(f'm2f_mm: {short_message(err)}', file=sys.stderr, flush=True)
        sys.exit(1)
    if isinstance(result, int):
        sys.exit(result)
