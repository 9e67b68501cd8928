"""Stop (or skip) a training step whose loss or gradient is NaN/inf, before the optimizer moves.

Without it, ``lr=1e6`` logs ``grad_norm: nan`` at one iteration, the optimizer applies the NaN
step, and the next iteration dies in the matcher with no iteration, loss term or image named.

:class:`M2FNonFiniteGuardHook` checks, every iteration:

1. the loss terms, where the model turns its loss dict into the total (``parse_losses``, before
   backward): any non-finite term stops training (``mode='raise'``) with the iteration, the terms,
   the prediction sets they belong to, the images of the batch and the usual fixes;
2. the gradient norm, just before ``optim_wrapper.step()``: a non-finite norm stops likewise.

With ``mode='skip'`` the step is skipped instead (gradients dropped, parameters untouched) and
counted in the log as ``nonfinite_skipped``. Under DDP the skip decision is all-reduced, so every
rank skips the same steps. Wrappers with a loss scaler (fp16 AMP) keep its rule for gradients (it
skips overflowing steps and lowers the scale); their loss terms are still checked. bf16 AMP has no
scaler, so its gradients are checked like fp32's.

It works by wrapping two bound methods of the model and the optimizer wrapper in ``before_train``:
that reaches every model (mmdet's detectors, mmseg's EncoderDecoder) and every wrapper type
without changing the config's ``optim_wrapper.type``, which mmdet's ``--amp`` insists on.
"""
import re
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from ...errors import M2FConfigError, M2FNonFiniteError
from ...registry import register_hook

FIXES = ('usual fixes: lower optim_wrapper.optimizer.lr (or warm up longer), keep gradient clipping on '
         '(optim_wrapper.clip_grad=dict(max_norm=0.01, norm_type=2)), with --amp try --amp-dtype bfloat16 or '
         'fp32; to skip such steps instead: --cfg-options nonfinite_steps=skip')
MODES = ('raise', 'skip')


def prediction_sets(loss_names: Sequence[str]) -> List[str]:
    """Loss keys -> the prediction sets they come from (``'d3.loss_mask'`` -> ``'d3'``, else ``'final'``)."""
    sets = []
    for name in loss_names:
        match = re.search(r'(?:^|\.)(d\d+)\.', name)
        set_name = match.group(1) if match else 'final'
        if set_name not in sets:
            sets.append(set_name)
    return sets


def non_finite_terms(losses: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """``{name: value}`` of the loss terms (keys containing ``loss``) that are NaN/inf; one host sync."""
    names = [k for k, v in losses.items() if 'loss' in k and isinstance(v, torch.Tensor)]
    if not names:
        return {}
    values = torch.stack([losses[k].detach().float().sum() for k in names]).cpu()
    return {k: float(v) for k, v in zip(names, values) if not torch.isfinite(v)}


def gradient_norm(params) -> torch.Tensor:
    """L2 norm of all gradients (0-dim tensor; NaN/inf if any gradient is)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))


@register_hook
class M2FNonFiniteGuardHook(Hook):
    """See the module docstring. ``M2FRunner`` adds it from the config key ``nonfinite_steps``."""

    priority = 'VERY_HIGH'

    def __init__(self, mode: str = 'raise') -> None:
        if mode not in MODES:
            raise M2FConfigError(f'nonfinite_steps must be one of {MODES}, got {mode!r}')
        self.mode = mode
        self.num_skipped = 0
        self._images: List[str] = []
        self._iteration = 0
        self._bad_terms: Dict[str, float] = {}

    # -- what the step is about ------------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._iteration = runner.iter + 1  # as the log counts
        samples = data_batch.get('data_samples', []) if isinstance(data_batch, dict) else []
        self._images = [s.metainfo.get('img_path', '?') for s in samples if hasattr(s, 'metainfo')]

    def _images_text(self) -> str:
        return 'images of the batch: ' + (', '.join(f'[{i}] {p}' for i, p in enumerate(self._images)) or 'unknown')

    # -- the two checks ----------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        parse_losses, step = model.parse_losses, runner.optim_wrapper.step
        guard = self

        def checked_parse_losses(losses):
            bad = non_finite_terms(losses)
            if bad:
                guard._bad_terms.update(bad)
                terms = ', '.join(f'{k}={v}' for k, v in bad.items())
                if guard.mode == 'raise':
                    raise M2FNonFiniteError(
                        f'non-finite loss at iteration {guard._iteration}: {terms} (prediction sets: '
                        f'{", ".join(prediction_sets(bad))}); {guard._images_text()}. The optimizer did not step; '
                        f'{FIXES}')
            return parse_losses(losses)

        def checked_step(**kwargs):
            wrapper = runner.optim_wrapper
            norm = None
            if getattr(wrapper, 'loss_scaler', None) is None:  # a loss scaler (fp16 AMP) owns this decision
                norm = gradient_norm(p for group in wrapper.param_groups for p in group['params'])
            bad = torch.tensor(float(bool(guard._bad_terms) or (norm is not None and not torch.isfinite(norm))))
            if guard.mode == 'skip' and get_world_size() > 1:
                all_reduce(bad, op='max')  # every rank skips the same steps
            guard._bad_terms = {}
            if not bool(bad):
                return step(**kwargs)
            if guard.mode == 'raise':
                raise M2FNonFiniteError(
                    f'non-finite gradient norm ({float(norm)}) at iteration {guard._iteration}, with finite loss '
                    f'terms; {guard._images_text()}. The optimizer did not step; {FIXES}')
            wrapper.zero_grad()
            guard.num_skipped += 1
            if norm is not None:  # the log's grad_norm shows this step's, not the last good one's
                runner.message_hub.update_scalar('train/grad_norm', float(norm))
            print_log(f'skipped the optimizer step of iteration {guard._iteration} (non-finite loss or gradient; '
                      f'{guard._images_text()}); {guard.num_skipped} skipped so far', logger='current', level=30)

        model.parse_losses = checked_parse_losses
        runner.optim_wrapper.step = checked_step

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        if self.mode == 'skip':
            runner.message_hub.update_scalar('train/nonfinite_skipped', self.num_skipped)
