"""Build-on-first-use of the compiled CPU kernel (csrc/ms_deform_attn_cpu.cpp), with a fallback.

The C++ file is compiled by :func:`torch.utils.cpp_extension.load` the first time a CPU
deformable-attention call needs it (about 15 s on 2 cores; needs a C++ compiler and ninja, which
``tools/setup_env.sh`` installs) and cached by torch under ``$TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions``, one folder per checkout), so later processes only load the shared library. It registers the
torch custom ops ``torch.ops.m2f_mm.ms_deform_attn_forward`` / ``ms_deform_attn_backward``.

When the build or the load fails, or ``M2F_MM_CPU_KERNEL=0`` is set, one line is logged and the
callers use mmcv's pure-PyTorch path instead (slower, same results).
"""
import logging
import os
import os.path as osp
import threading
from typing import Optional

import torch
from mmengine.logging import print_log

__all__ = ['load_cpu_kernel', 'cpu_kernel_status']

_SOURCE = osp.join(osp.dirname(osp.abspath(__file__)), 'csrc', 'ms_deform_attn_cpu.cpp')
_NAME = 'm2f_mm_ms_deform_attn_cpu'
_lock = threading.Lock()
# loaded: None = not tried yet, True / False after; registered: autograd / fake kernels attached
_state = {'loaded': None, 'reason': None, 'registered': False}


def _build() -> None:
    import hashlib

    from torch.utils.cpp_extension import _get_build_directory, load
    # One build folder per source path: ninja's build file names the source, so two checkouts (or a copy
    # reached through another path) sharing one folder would rebuild each other's library on every start.
    tag = hashlib.sha1(_SOURCE.encode()).hexdigest()[:10]
    folder = osp.join(osp.dirname(_get_build_directory(_NAME, verbose=False)), f'{_NAME}_{tag}')
    os.makedirs(folder, exist_ok=True)
    # -O3 + OpenMP simd pragmas vectorise the per-channel loops; no -march: the float loops carry
    # their own AVX2 / AVX-512 clones, so a shared cache directory works on any x86-64 / aarch64.
    load(name=_NAME, sources=[_SOURCE], extra_cflags=['-O3', '-fopenmp-simd'], is_python_module=False,
         build_directory=folder, verbose=False)


def _register_python_side() -> None:
    """Autograd and fake (meta) kernels, so autograd and torch.compile see one op (once per process)."""
    if _state.get('registered'):
        return
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def backward(ctx, grad_output):
        value, shapes, start, loc, attn = ctx.saved_tensors
        grad_value, grad_loc, grad_attn = torch.ops.m2f_mm.ms_deform_attn_backward(
            grad_output.contiguous(), value, shapes, start, loc, attn)
        return grad_value, None, None, grad_loc, grad_attn

    torch.library.register_autograd('m2f_mm::ms_deform_attn_forward', backward, setup_context=setup_context)

    @torch.library.register_fake('m2f_mm::ms_deform_attn_forward')
    def _forward_fake(value, shapes, start, loc, attn):
        return value.new_empty((value.shape[0], loc.shape[1], value.shape[2] * value.shape[3]))

    @torch.library.register_fake('m2f_mm::ms_deform_attn_backward')
    def _backward_fake(grad_output, value, shapes, start, loc, attn):
        return torch.empty_like(value), torch.empty_like(loc), torch.empty_like(attn)

    _state['registered'] = True


def load_cpu_kernel() -> bool:
    """True when the compiled CPU kernel is usable (building it on the first call)."""
    if _state['loaded'] is not None:
        return _state['loaded']
    with _lock:
        if _state['loaded'] is not None:
            return _state['loaded']
        if os.environ.get('M2F_MM_CPU_KERNEL', '1') == '0':
            _state.update(loaded=False, reason='disabled by M2F_MM_CPU_KERNEL=0')
        else:
            try:
                _build()
                _register_python_side()
                _state.update(loaded=True, reason=None)
            except Exception as exc:  # no compiler, no ninja, read-only cache, ...
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
                _state.update(loaded=False, reason=f'{type(exc).__name__}: {first}')
        if not _state['loaded']:
            print_log(f"m2f_mm: compiled CPU deformable attention unavailable ({_state['reason']}); "
                      "using mmcv's pure-PyTorch path (slower, same results)",
                      logger='current', level=logging.WARNING)
    return _state['loaded']


def cpu_kernel_status() -> Optional[str]:
    """``'compiled'``, ``'pytorch (<reason>)'``, or ``None`` before the first CPU call."""
    if _state['loaded'] is None:
        return None
    return 'compiled' if _state['loaded'] else f"pytorch ({_state['reason']})"
