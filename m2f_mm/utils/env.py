"""Environment checks that turn a broken install into one clear message naming the fix.

mmcv built without its compiled ops (``mmcv-lite``, or a source build without ``MMCV_WITH_OPS=1``)
imports fine and only fails deep inside a forward pass with ``No module named 'mmcv._ext'``;
an mmcv that mmdet refuses fails with an assertion inside ``import mmdet``. Both are checked here,
before mmdet is imported, so every entry point can report the problem and its fix.

setuptools >= 81 no longer ships ``pkg_resources``; mmengine 0.10 imports it whenever a config
names an ``mmdet::`` / ``mmseg::`` base, so ``import m2f_mm`` works and every config then fails.
:func:`check_pkg_resources` looks for it without importing it (importing costs ~0.3 s).
"""
import importlib
import importlib.util

# mmdet 3.3 accepts 2.0.0rc4 <= mmcv < 2.2.0; mmsegmentation 1.2 accepts 2.0.0rc4 <= mmcv < 2.2.0.
MMCV_MIN = '2.0.0rc4'
MMCV_MAX = '2.2.0'
FIX_HINT = ('Fix: `pip uninstall -y mmcv mmcv-lite` then `bash tools/setup_env.sh` (uses a local wheel '
            'when one exists, else builds mmcv 2.1.0 from source with MMCV_WITH_OPS=1, ~17 min on 2 cores), '
            'or by hand: `pip install "setuptools<81" wheel ninja && MMCV_WITH_OPS=1 pip install '
            '--no-build-isolation --no-deps mmcv==2.1.0`.')


# torch 2.13 requires setuptools >= 77.0.3; mmengine 0.10 needs pkg_resources, removed in setuptools 81.
SETUPTOOLS_SPEC = 'setuptools>=77.0.3,<81'


class M2FEnvironmentError(ImportError):
    """The installed OpenMMLab stack cannot run m2f_mm; the message says why and how to fix it."""


def _version_tuple(version: str):
    from mmengine.utils import digit_version
    return digit_version(version)


def check_mmcv() -> str:
    """Raise :class:`M2FEnvironmentError` unless mmcv has a usable version and compiled ops.

    Returns:
        str: the installed mmcv version.
    """
    try:
        import mmcv
    except ImportError as exc:
        raise M2FEnvironmentError(f'mmcv is not installed ({exc}). {FIX_HINT}') from None
    version = getattr(mmcv, '__version__', '0')
    if not (_version_tuple(MMCV_MIN) <= _version_tuple(version) < _version_tuple(MMCV_MAX)):
        raise M2FEnvironmentError(
            f'mmcv {version} is installed, but mmdet 3.3 and mmsegmentation 1.2 (which m2f_mm builds on) '
            f'need {MMCV_MIN} <= mmcv < {MMCV_MAX}. {FIX_HINT}')
    try:
        importlib.import_module('mmcv._ext')
    except ImportError:
        raise M2FEnvironmentError(
            f'mmcv {version} is installed without its compiled ops (mmcv._ext is missing: this is '
            f'mmcv-lite or a build without MMCV_WITH_OPS=1). m2f_mm needs mmcv.ops '
            f'(MultiScaleDeformableAttention, point_sample). {FIX_HINT}') from None
    return version


# What m2f_mm's registered components need; with none of them installed, only the numpy parts import.
OPENMMLAB_STACK = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg')


def missing_packages(names=OPENMMLAB_STACK) -> list:
    """The ``names`` that cannot be imported (found without importing them)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def check_pkg_resources() -> None:
    """Raise :class:`M2FEnvironmentError` when ``pkg_resources`` (which mmengine's config loader imports)
    is not importable, e.g. with setuptools >= 81."""
    if importlib.util.find_spec('pkg_resources') is not None:
        return
    try:
        from importlib.metadata import version
        installed = f'setuptools {version("setuptools")} is installed'
    except Exception:  # importlib.metadata.PackageNotFoundError, or a broken distribution
        installed = 'setuptools is not installed'
    raise M2FEnvironmentError(
        f'pkg_resources is missing ({installed}; setuptools 81 removed pkg_resources, and mmengine 0.10 '
        f'imports it to load every config). Fix: `pip install "{SETUPTOOLS_SPEC}"` (the range m2f_mm\'s '
        'setup.py declares: torch 2.13 needs >= 77.0.3).')


def check_environment() -> str:
    """Every check above, for entry points (tools, inferencers). Returns the mmcv version."""
    version = check_mmcv()
    missing = missing_packages(('mmdet', 'mmseg'))
    if missing:
        raise M2FEnvironmentError(f'{" and ".join(missing)} not installed: m2f_mm registers its components in '
                                  'mmdet\'s and mmseg\'s registries. Fix: `pip install "mmdet>=3.1,<3.4" '
                                  '"mmsegmentation>=1.1,<1.3" ftfy regex` (or `bash tools/setup_env.sh`).')
    check_pkg_resources()
    return version
