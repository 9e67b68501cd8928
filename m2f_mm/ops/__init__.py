"""Custom operators: multi-scale deformable attention with a compiled CPU kernel."""
from ._extension import cpu_kernel_status, load_cpu_kernel
from .ms_deform_attn import (MSDeformAttn, grid_sample_attention, multi_scale_deformable_attention, pytorch_deform_attn,
                             sampling_dtype, uses_pytorch_deform_attn)

__all__ = ['MSDeformAttn', 'multi_scale_deformable_attention', 'sampling_dtype', 'load_cpu_kernel',
           'cpu_kernel_status', 'pytorch_deform_attn', 'uses_pytorch_deform_attn', 'grid_sample_attention']
