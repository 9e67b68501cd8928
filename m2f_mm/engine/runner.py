"""``M2FRunner``: mmengine's Runner with the guarantees a days-long Mask2Former run needs.

Selected by ``runner_type = 'M2FRunner'`` in every m2f_mm config, so ``tools/train.py``,
``tools/test.py``, mmdet's and mmseg's own tools and ``mim train`` all reach it. On top of
mmengine's Runner it

- launches anywhere torchrun / srun runs: backend ``auto`` (nccl with CUDA, gloo without), no CUDA
  call without CUDA, DDP with ``device_ids=None`` on CPU (``engine/distributed.py``);
- gives every rank its own random stream (point sampling differs across ranks), derived from the
  seed and the rank, while data order stays the same as mmengine's;
- loads weights strictly (``load_from``, ``tools/test.py``, ``--resume``): a checkpoint that does
  not fit stops the run naming keys, shapes and the fix; ``partial_load = True`` opts out
  (``checkpoints/loading.py``);
- saves the random states of every rank in each checkpoint and restores them on ``--resume``,
  so a killed-and-resumed run ends bit-identical to an uninterrupted one, whatever the DataLoader
  settings: each sample's augmentation is seeded by its place in the sampler's stream
  (``engine/data_seeding.py``); resume skips the trained batches without loading them and names
  each setting that differs from the checkpoint's (``engine/resume.py``: what comes back, in which
  order, and which value wins);
- writes checkpoints all or nothing and deletes old ones only after the new one is on disk (a kill or
  a full disk leaves the previous checkpoint and ``last_checkpoint`` valid; ``engine/durable.py``,
  ``engine/hooks/checkpoint.py``), in types ``torch.load``'s default ``weights_only=True`` reads, so
  mmdet's / mmseg's own tools and inferencers load them (``checkpoints/safe_types.py``); ``--resume``
  falls back to the newest intact checkpoint when ``last_checkpoint`` names a missing or broken file;
- ends a distributed job whose rank stops answering, naming the rank and its iteration, after
  ``env_cfg.dist_cfg.timeout`` seconds (``engine/watchdog.py``, ``engine/hooks/watchdog.py``);
- stops with one line at a bad sample, or skips it (``train_dataloader.bad_samples = 'skip'``),
  and DataLoader workers die with a killed trainer (``engine/data_guard.py``);
- stops or skips a step with a non-finite loss or gradient (``nonfinite_steps``,
  ``engine/hooks/nonfinite.py``) and checks class counts against the dataset before the first step
  (``engine/hooks/class_check.py``);
- writes the test metrics JSON once, on the main process (``engine/hooks/logger.py``).

Config keys it reads (all optional): ``partial_load`` (bool), ``nonfinite_steps`` ('raise' |
'skip'), ``<split>_dataloader.bad_samples`` ('raise' | 'skip'; validation and test always raise),
``env_cfg.dist_cfg.timeout`` (seconds, default 600).
"""
import copy
import inspect
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size, is_distributed
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import Runner

from ..checkpoints.loading import load_checkpoint_file, load_into
from ..checkpoints.safe_load import install_checkpoint_loader
from ..checkpoints.safe_types import make_weights_only
from .data_guard import with_guard
from .distributed import check_world_fits, collective_timeout, ddp_wrapper_cfg, init_distributed, rank_seed
from .durable import write_failure_message
from ..errors import M2FCheckpointError, M2FError
from ..registry import register_runner
from .hooks import M2FCheckpointHook, M2FClassCheckHook, M2FLoggerHook, M2FNonFiniteGuardHook, M2FWatchdogHook
from .resume import (capture_rng_state, check_iterations_left, config_literals, restore_rng_state, resumable_checkpoint,
                     resumed_settings, rng_states_for_rank, setting_changes, skip_trained_batches)

RNG_KEY = 'm2f_rng_states'


def _accepts(dataset_type, argument: str) -> bool:
    """Whether the registered dataset class ``dataset_type`` takes ``argument`` (through ``**kwargs`` too)."""
    from m2f_mm.registry import DATASETS  # mmdet's; m2f_mm's datasets are in mmseg's too
    cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
    for klass in (cls.__mro__ if cls is not None else ()):
        if '__init__' not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        if argument in params:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return False
    return False


@register_runner
class M2FRunner(Runner):
    """See the module docstring; constructed like mmengine's ``Runner`` (``Runner.from_cfg``)."""

    def __init__(self, *args, **kwargs) -> None:
        cfg = kwargs.get('cfg') or {}
        self.partial_load = bool(cfg.get('partial_load', False))
        self.nonfinite_steps = cfg.get('nonfinite_steps', 'raise')
        M2FNonFiniteGuardHook(self.nonfinite_steps)  # validates the value before anything is built
        self._pending_rng: Optional[list] = None
        self._resumed_meta: dict = {}
        # Opt-in by choosing this runner: mmengine checkpoints (and Pretrained files) load under torch's
        # safe-by-default loading without running code.
        install_checkpoint_loader()
        super().__init__(*args, **kwargs)

    @classmethod
    def from_cfg(cls, cfg) -> 'M2FRunner':
        """mmengine's ``from_cfg`` on the resolved config (``m2f_mm.config.resolve_config``): ``data_root``
        moved into every dataloader and evaluator, classes and class counts from the data, schedule
        fractions as iterations; a config the data contradicts stops here, before anything is built."""
        from m2f_mm.config import resolve_config
        cfg = copy.deepcopy(cfg)
        resolution = resolve_config(cfg, purpose='train')
        runner = super().from_cfg(cfg)
        for line in resolution.lines():
            runner.logger.info(line)
        return runner

    # -- launching ---------------------------------------------------------------------------------
    def setup_env(self, env_cfg: dict) -> None:
        if self.distributed and not is_distributed():
            init_distributed(self.launcher, **copy.deepcopy(env_cfg.get('dist_cfg', {})))
        super().setup_env(env_cfg)  # the process group exists now: mmengine's init_dist is skipped

    def set_randomness(self, seed, diff_rank_seed: bool = False, deterministic: bool = False) -> None:
        super().set_randomness(seed, diff_rank_seed=diff_rank_seed, deterministic=deterministic)
        if not diff_rank_seed and get_world_size() > 1:
            # mmengine's diff_rank_seed would also unseed the samplers (data order would change from run to
            # run); reseed only the global generators, so each rank draws its own points.
            import random
            import numpy as np
            own = rank_seed(self._seed, get_rank())
            random.seed(own)
            np.random.seed(own % 2**32)
            torch.manual_seed(own)

    def wrap_model(self, model_wrapper_cfg: Optional[dict], model):
        if self.distributed and not is_model_wrapper(model):
            model_wrapper_cfg = ddp_wrapper_cfg(model_wrapper_cfg, self.cfg.get('find_unused_parameters', False),
                                                on_cuda=torch.cuda.is_available())
        return super().wrap_model(model_wrapper_cfg, model)

    @staticmethod
    def build_dataloader(dataloader, seed: Optional[int] = None, diff_rank_seed: bool = False):
        mode = None
        if isinstance(dataloader, dict):
            dataloader = dict(dataloader)
            mode = dataloader.pop('bad_samples', 'raise')
            sampler = dataloader.get('sampler', {}) or {}
            if mode == 'skip' and not sampler.get('shuffle', True):
                mode = 'raise'  # an unshuffled (validation / test) loader must not drop samples
            dataset = dataloader.get('dataset')
            if mode == 'skip' and isinstance(dataset, dict) and _accepts(dataset.get('type'), 'bad_annotations'):
                dataloader['dataset'] = dict(dataset, bad_annotations='skip')  # leave out bad JSON entries too
        loader = Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        # Built here from a config: its samples get position-seeded augmentation (any worker count, exact resume).
        return with_guard(loader, mode, seed=seed if mode is not None else None, rank=get_rank())

    # -- checkpoints ------------------------------------------------------------------------------
    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):  # noqa: B006  mmengine's signature
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):  # DDP, or --tta's wrapper
            model = model.module
        report = load_into(model, checkpoint, partial=self.partial_load and not strict, filename=filename,
                           rules=revise_keys, logger=self.logger)
        self._has_loaded = True
        meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
        self._pending_rng = meta.get(RNG_KEY) if isinstance(meta, dict) else None
        self._resumed_meta = meta if isinstance(meta, dict) else {}
        self.logger.info(f'Load checkpoint from {filename} ({report.num_loaded} tensors)')
        return checkpoint

    def resume(self, filename: str, resume_optimizer: bool = True, resume_param_scheduler: bool = True,
               map_location='default') -> None:
        # The order is engine/resume.py's: mmengine's state, settings, data position, random states.
        super().resume(filename, resume_optimizer, resume_param_scheduler, map_location)
        self._check_resumed_settings(filename)
        skipped = skip_trained_batches(self.train_loop)
        if skipped:
            self.logger.info(skipped)
        # Last, after mmengine re-seeded: the run continues from the saved streams, not the seed's.
        state, reason = rng_states_for_rank(self._pending_rng, get_rank(), get_world_size())
        if state is None:
            self.logger.warning(f'random states not restored ({reason}): the resumed run draws other random '
                                'points than an uninterrupted one would')
        else:
            restore_rng_state(state)

    def load_or_resume(self) -> None:
        if self._has_loaded or not (self._resume and self._load_from is None):
            return super().load_or_resume()
        # --resume without a file: last_checkpoint's file if intact, else the newest intact one (said why)
        path, note = resumable_checkpoint(self.work_dir)
        if note:
            self.logger.warning(note)
        if path is None:
            self.logger.info(f'--resume: no checkpoint in {self.work_dir} yet, training starts at iteration 0')
            return None
        self.logger.info(f'Auto resumed from the latest checkpoint {path}.')
        self.resume(path)
        self._has_loaded = True

    def _check_resumed_settings(self, filename: str) -> None:
        """Stop when nothing is left to train; log each setting that differs from the checkpoint's."""
        resume_iter = self.train_loop.iter
        check_iterations_left(self.train_loop.max_iters, resume_iter, filename)
        saved_text = self._resumed_meta.get('cfg')
        saved = resumed_settings(config_literals(saved_text)) if isinstance(saved_text, str) else {}
        current = dict(resumed_settings(self.cfg), **{'train_cfg.max_iters': self.train_loop.max_iters})
        if getattr(self.train_dataloader, 'batch_size', None) is not None:
            current['train_dataloader.batch_size'] = self.train_dataloader.batch_size
        saved_world = len(self._pending_rng) if self._pending_rng else None
        for line in setting_changes(saved, current, saved_world, self.world_size, filename, resume_iter):
            self.logger.warning(line)

    def save_checkpoint(self, out_dir: str, filename: str, file_client_args: Optional[dict] = None, *args,
                        **kwargs) -> None:
        # Collective on every rank (CheckpointHook calls this on all of them); rank 0 writes.
        states = all_gather_object(capture_rng_state()) if is_distributed() else [capture_rng_state()]
        kwargs['meta'] = dict(kwargs.get('meta') or {}, **{RNG_KEY: states})
        if file_client_args is None and kwargs.get('backend_args') is None and '://' not in str(out_dir):
            kwargs['backend_args'] = dict(backend='m2f_durable_local')  # all or nothing (engine/durable.py)
        try:
            super().save_checkpoint(out_dir, filename, file_client_args, *args, **kwargs)
        except OSError as err:
            raise M2FCheckpointError(write_failure_message(osp.join(out_dir, filename), err)) from None

    def call_hook(self, fn_name: str, **kwargs) -> None:
        super().call_hook(fn_name, **kwargs)
        if fn_name == 'before_save_checkpoint':  # after every hook added its part: types torch.load accepts
            make_weights_only(kwargs['checkpoint'])

    # -- hooks -------------------------------------------------------------------------------------
    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        # mmengine's CheckpointHook -> the durable one, same settings (engine/hooks/checkpoint.py)
        self._hooks = [M2FCheckpointHook.from_hook(h) if type(h) is CheckpointHook else h for h in self._hooks]
        # mmengine's LoggerHook -> one that writes the test metrics on the main process only (engine/hooks/logger.py)
        self._hooks = [M2FLoggerHook.from_hook(h) if type(h) is LoggerHook else h for h in self._hooks]
        present = {type(hook) for hook in self.hooks}
        if M2FNonFiniteGuardHook not in present:
            self.register_hook(M2FNonFiniteGuardHook(self.nonfinite_steps))
        if M2FClassCheckHook not in present:
            self.register_hook(M2FClassCheckHook())
        if self.distributed and M2FWatchdogHook not in present:
            self.register_hook(M2FWatchdogHook(collective_timeout(self.cfg.get('env_cfg', {}).get('dist_cfg'))))

    def train(self):
        from m2f_mm.config import check_data_files
        check_data_files(self.cfg, ['train', 'val'] if self._val_loop is not None else ['train'])
        if self.distributed:
            check_world_fits(len(self.train_dataloader.dataset), self.world_size)
        try:
            return super().train()
        except RuntimeError as err:  # a collective that timed out: name the rank that stopped (exits)
            for hook in self.hooks if not isinstance(err, M2FError) else ():
                if isinstance(hook, M2FWatchdogHook):
                    hook.fail_on_timeout(err)
            raise

    def test(self):
        from m2f_mm.config import check_data_files
        check_data_files(self.cfg, ['test'])
        return super().test()
