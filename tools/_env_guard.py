"""Imported first by every tool: a broken install (mmcv, setuptools) ends the tool with one message.

Tools in sub-folders (``tools/demo/``, ``tools/analysis_tools/``, ...) put ``tools/`` on ``sys.path``
and import this module, so they all share one check. It cannot live in m2f_mm: what it reports is
``import m2f_mm`` itself failing (m2f_mm is installed, editable, by tools/setup_env.sh).
"""
import sys
import warnings

# mmengine imports pkg_resources (setuptools < 81 is required for it); its deprecation notice is noise.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

try:
    import m2f_mm  # noqa: F401,E402  (checks mmcv, then registers every component)
    from m2f_mm.utils.env import check_pkg_resources  # noqa: E402
    check_pkg_resources()
except ImportError as exc:
    if type(exc).__name__ != 'M2FEnvironmentError':
        raise
    print(f'm2f_mm: {exc}', file=sys.stderr)
    sys.exit(1)


def run_tool(main) -> None:
    """Run ``main()``; an m2f_mm error (bad sample, NaN, checkpoint that does not fit, launch problem)
    ends the tool with its one-line message and status 1 instead of a traceback."""
    from m2f_mm.errors import run_main
    run_main(main)
