"""Mixed-precision training on any device, CPU included (``tools/train.py --amp [--amp-dtype]``).

mmengine's ``AmpOptimWrapper`` refuses to run without CUDA/NPU/MLU, while CPU autocast supports
bfloat16 (and float16) fine. :class:`M2FAmpOptimWrapper` is an ``OptimWrapper`` that runs the
forward pass under ``torch.autocast(device, dtype)``; with float16 it scales the loss with
``torch.amp.GradScaler`` (dynamic scale), with bfloat16 (8 exponent bits, fp32's range) it needs
none. What stays fp32 inside the model under autocast: the matching costs and losses
(``M2FCriterion`` disables autocast), the deformable-attention sampling (see
:mod:`m2f_mm.ops.ms_deform_attn`), and inference post-processing.
"""
from contextlib import contextmanager
from typing import Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from ...errors import M2FConfigError
from ...registry import register_optim_wrapper

__all__ = ['M2FAmpOptimWrapper']

_DTYPES = ('float16', 'bfloat16')


@register_optim_wrapper
class M2FAmpOptimWrapper(OptimWrapper):
    """Autocast + (for float16) dynamic loss scaling, on CPU or GPU.

    Args:
        dtype: ``'bfloat16'`` (default) or ``'float16'``.
        init_scale: the GradScaler's first loss scale (float16 only).
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, *, dtype: Union[str, torch.dtype] = 'bfloat16', init_scale: float = 2.0 ** 16,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        name = str(dtype).replace('torch.', '')
        if name not in _DTYPES:
            raise M2FConfigError(f'M2FAmpOptimWrapper: dtype must be one of {_DTYPES}, got {dtype!r}')
        self.cast_dtype = getattr(torch, name)
        self.init_scale = float(init_scale)
        self.loss_scaler = None  # built on the first forward, once the device is known

    def _scaler(self, device_type: str) -> 'torch.amp.GradScaler':
        if self.loss_scaler is None:
            self.loss_scaler = torch.amp.GradScaler(device_type, init_scale=self.init_scale,
                                                    enabled=self.cast_dtype == torch.float16)
        return self.loss_scaler

    @contextmanager
    def optim_context(self, model: nn.Module):
        device_type = next(model.parameters()).device.type
        self._scaler(device_type)
        with super().optim_context(model), torch.autocast(device_type=device_type, dtype=self.cast_dtype):
            yield

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        scaler = self._scaler(loss.device.type)
        scaler.scale(loss).backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs) -> None:
        scaler = self.loss_scaler
        if scaler is None:  # no backward yet: nothing to step
            return
        if self.clip_grad_kwargs:
            scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            self._clip_grad()
        scaler.step(self.optimizer, **kwargs)
        scaler.update()

    def state_dict(self) -> dict:
        state = self.optimizer.state_dict()
        if self.loss_scaler is not None and self.loss_scaler.is_enabled():
            state['loss_scaler'] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        scaler_state = state_dict.pop('loss_scaler', None)
        if scaler_state is not None:
            device_type = self.optimizer.param_groups[0]['params'][0].device.type
            self._scaler(device_type).load_state_dict(scaler_state)
        self.optimizer.load_state_dict(state_dict)
