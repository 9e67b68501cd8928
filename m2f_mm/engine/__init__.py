"""Running m2f_mm for days: launching, strict checkpoints, exact resume, bad data and NaN guards.

Importing registers ``M2FRunner`` (mmengine RUNNERS), the hooks of ``engine/hooks/`` (HOOKS) and
``M2FAmpOptimWrapper`` (``engine/optim/``, OPTIM_WRAPPERS).
"""
from ..errors import (M2FBadSampleError, M2FCheckpointError, M2FConfigError, M2FError, M2FLaunchError, M2FNonFiniteError,
                      short_message)
from .hooks import (M2FCheckpointHook, M2FClassCheckHook, M2FNonFiniteGuardHook, M2FPretrainedCheckHook,
                    M2FWatchdogHook)
from .optim import M2FAmpOptimWrapper
from .runner import M2FRunner

__all__ = ['M2FRunner', 'M2FNonFiniteGuardHook', 'M2FWatchdogHook', 'M2FCheckpointHook', 'M2FClassCheckHook',
           'M2FPretrainedCheckHook', 'M2FAmpOptimWrapper', 'M2FError', 'M2FBadSampleError', 'M2FCheckpointError',
           'M2FConfigError', 'M2FLaunchError', 'M2FNonFiniteError', 'short_message']
