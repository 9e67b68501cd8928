"""The optional packages of m2f_mm.deploy (the ``deploy`` extra), imported on demand."""
import importlib
from types import ModuleType

EXTRA_HINT = "pip install -e '.[deploy]'  (or: pip install onnx onnxruntime)"


class MissingDeployExtra(ImportError):
    """An optional package of the ``deploy`` extra is not installed (the message names the install command)."""


def require(name: str) -> ModuleType:
    """``import name``, or one line naming the ``deploy`` extra when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDeployExtra(f'{name} is not installed: m2f_mm.deploy needs the deploy extra, '
                                 f'{EXTRA_HINT}') from exc
