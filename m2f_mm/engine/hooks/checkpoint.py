"""``M2FCheckpointHook``: mmengine's CheckpointHook that never leaves a run without a checkpoint.

mmengine 0.10's hook deletes the oldest checkpoint *before* it writes the new one and writes
``last_checkpoint`` in place, so with ``max_keep_ckpts=1`` a kill or a full disk during a save left no
checkpoint, or a ``last_checkpoint`` naming a deleted file. Here, on the writing rank:

1. the new checkpoint is written all or nothing (``M2FRunner.save_checkpoint`` -> ``engine/durable.py``);
2. then ``last_checkpoint`` is replaced the same way;
3. only then are outdated checkpoints (``max_keep_ckpts``, a replaced best checkpoint) deleted.

A write that fails leaves the previous checkpoint and ``last_checkpoint`` as they were and stops the
run with one line (:class:`~m2f_mm.errors.M2FCheckpointError`). Temporary files of killed
writers are removed when training starts. ``M2FRunner`` puts this hook in place of every
``CheckpointHook`` (same settings), so configs keep ``type='CheckpointHook'``.
"""
import os.path as osp
from typing import List

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from ...errors import M2FCheckpointError
from ...registry import register_hook
from .replacing import ReplacesHook
from ..durable import atomic_write_text, remove_durably, remove_stale_temp_files, write_failure_message


class _DeferredRemoval:
    """A file backend whose ``remove`` / ``rmtree`` only record the path (everything else is delegated)."""

    def __init__(self, backend, removals: List[str]) -> None:
        self._backend = backend
        self._removals = removals

    def remove(self, path) -> None:
        self._removals.append(str(path))

    def rmtree(self, path) -> None:
        self._removals.append(str(path))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@register_hook
class M2FCheckpointHook(ReplacesHook, CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with the order of writes described above."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and self._is_local(self.out_dir):
            for path in remove_stale_temp_files(self.out_dir) + remove_stale_temp_files(runner.work_dir):
                runner.logger.info(f'removed {path}, a checkpoint a killed run had not finished writing')

    def _is_local(self, path: str) -> bool:
        return '://' not in str(path)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            # Saved in this checkpoint with the outdated ones still listed: a run killed before it deleted
            # them deletes them when resumed from it (CheckpointHook.before_train trims the list).
            runner.message_hub.update_info('keep_ckpt_ids', outdated + list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        record = osp.join(runner.work_dir, 'last_checkpoint')
        try:
            atomic_write_text(record, str(self.last_ckpt))
        except OSError as err:
            raise M2FCheckpointError(write_failure_message(record, err)) from None
        for old_step in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
            if self._is_local(path):
                remove_durably([path])
            elif self.file_backend.isfile(path):
                self.file_backend.remove(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        # mmengine removes the previous best checkpoint before writing the new one: defer that removal
        backend, removals = self.file_backend, []
        self.file_backend = _DeferredRemoval(backend, removals)
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        current = {str(p) for p in [getattr(self, 'best_ckpt_path', None), self.last_ckpt,
                                    *getattr(self, 'best_ckpt_path_dict', {}).values()] if p}
        for path in removals:
            if path in current:  # rewritten under the same name: the new file is already in place
                continue
            if self._is_local(path):
                remove_durably([path])
            else:
                backend.remove(path)
