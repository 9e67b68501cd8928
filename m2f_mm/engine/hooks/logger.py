"""``M2FLoggerHook``: mmengine's LoggerHook whose test-metrics JSON only the main process writes.

mmengine 0.10's ``LoggerHook.after_test_epoch`` dumps the test metrics to ``<log_dir>/<timestamp>.json`` on
every rank, and every rank has the same ``log_dir``: with ``dist_test.sh`` on two or more processes the writes
can interleave into a file that no JSON reader accepts. The other ranks hold the same metrics (the evaluator
gathers them), so writing once loses nothing. ``M2FRunner`` puts this hook in place of every ``LoggerHook``
(same settings), so configs keep ``type='LoggerHook'``.
"""
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook
from ...registry import register_hook
from .replacing import ReplacesHook


@register_hook
class M2FLoggerHook(ReplacesHook, LoggerHook):
    """mmengine's ``LoggerHook`` (same arguments); the test epoch's log line and JSON come from the main process."""

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if is_main_process():
            super().after_test_epoch(runner, metrics)
