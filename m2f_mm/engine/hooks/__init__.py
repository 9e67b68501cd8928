"""The hooks m2f_mm's runs use (mmengine HOOKS, registered through ``m2f_mm/registry.py``).

``M2FRunner`` adds the class check, the non-finite guard and (distributed) the watchdog to every run,
and puts ``M2FCheckpointHook`` and ``M2FLoggerHook`` in place of mmengine's ``CheckpointHook`` and
``LoggerHook``; configs may name ``M2FClassCheckHook`` and ``M2FPretrainedCheckHook`` in ``custom_hooks``.
"""
from .checkpoint import M2FCheckpointHook
from .class_check import M2FClassCheckHook
from .logger import M2FLoggerHook
from .nonfinite import M2FNonFiniteGuardHook
from .pretrained_check import M2FPretrainedCheckHook
from .watchdog import M2FWatchdogHook

__all__ = ['M2FCheckpointHook', 'M2FClassCheckHook', 'M2FLoggerHook', 'M2FNonFiniteGuardHook',
           'M2FPretrainedCheckHook', 'M2FWatchdogHook']
