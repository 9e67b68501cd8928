"""Running m2f_mm for days: launching, strict checkpoints, exact resume, bad data and NaN guards.

Importing registers ``M2FRunner`` (mmengine RUNNERS), ``M2FNonFiniteGuardHook`` and
``M2FWatchdogHook`` (HOOKS).
"""
from ..errors import (M2FBadSampleError, M2FCheckpointError, M2FConfigError, M2FError, M2FLaunchError, M2FNonFiniteError,
                      short_message)
from .nonfinite import M2FNonFiniteGuardHook
from .runner import M2FRunner
from .watchdog import M2FWatchdogHook

__all__ = ['M2FRunner', 'M2FNonFiniteGuardHook', 'M2FWatchdogHook', 'M2FError', 'M2FBadSampleError', 'M2FCheckpointError',
           'M2FConfigError', 'M2FLaunchError', 'M2FNonFiniteError', 'short_message']
