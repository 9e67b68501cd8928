"""Multi-scale deformable attention (Deformable DETR) with a compiled CPU kernel.

Shape legend:
    B       batch
    N_v     value tokens of all levels (sum_l H_l * W_l), level l starting at level_start_index[l]
    N_q     queries
    M       heads; C channels per head (embed_dims = M * C)
    L       levels; P sampling points per head and level
    H_l,W_l size of level l

Which implementation runs (``multi_scale_deformable_attention``):

- CPU: the C++ kernel of ``csrc/ms_deform_attn_cpu.cpp`` (built on first use, see
  :mod:`m2f_mm.ops._extension`): each point's four bilinear corners are read once per channel row,
  weighted by (bilinear weight x attention weight) and summed over all levels and points in one
  pass; the backward pass computes the value, location and attention-weight gradients in one pass
  too. mmcv has no CPU kernel: its ``multi_scale_deformable_attn_pytorch`` runs ``grid_sample`` per
  level on a [B*M, C, H_l, W_l] view, stacks the samples, weights and sums them; it is the fallback
  when the kernel cannot be built (one log line) and is the numerical reference of the tests.
- CUDA: mmcv's CUDA kernel (``MultiScaleDeformableAttnFunction``), as before.
- Inside ``with pytorch_deform_attn():``: mmcv's pure-PyTorch path on every device, whatever the
  process would use otherwise. Exporters (``torch.onnx.export``, ``torch.export``) need it: the
  compiled kernel and mmcv's CUDA kernel are custom ops no ONNX runtime knows, while the
  ``grid_sample`` path lowers to standard operators (ONNX GridSample, opset >= 16). The switch is
  scoped to the block and the thread, so the rest of the process keeps its kernel.

Dtype policy: the sampling always runs in float32 (float64 inputs stay float64), with autocast
disabled inside, and returns that dtype; the output projection that follows runs under the caller's
autocast again. Reasons: sampling locations need fp32 (a bf16 location on a 100-px map is off by up
to ~0.4 px), mmcv's CUDA kernel has no bf16, and the sampling is memory-bound, so a lower-precision
value buys little.
"""
import contextlib
import threading
from typing import Iterator, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttention, multi_scale_deformable_attn_pytorch
from torch import Tensor

from ..errors import M2FConfigError
from ._extension import load_cpu_kernel

__all__ = ['multi_scale_deformable_attention', 'grid_sample_attention', 'sampling_dtype', 'MSDeformAttn', 'pytorch_deform_attn',
           'uses_pytorch_deform_attn']

_forced = threading.local()  # depth of nested pytorch_deform_attn() blocks in this thread


@contextlib.contextmanager
def pytorch_deform_attn() -> Iterator[None]:
    """Within the block (this thread only), :func:`multi_scale_deformable_attention` runs mmcv's
    pure-PyTorch ``grid_sample`` path on every device instead of a compiled kernel.

    For exporters: the kernels are custom ops that ONNX cannot express, the ``grid_sample`` path is
    standard operators. Same results as the kernels (to float rounding), slower. Nests; restores the
    previous state on exit, exception or not.
    """
    _forced.depth = getattr(_forced, 'depth', 0) + 1
    try:
        yield
    finally:
        _forced.depth -= 1


def uses_pytorch_deform_attn() -> bool:
    """True inside a :func:`pytorch_deform_attn` block of this thread."""
    return getattr(_forced, 'depth', 0) > 0


def sampling_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the sampling runs in for inputs of ``dtype`` (see the module's dtype policy)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, sampling_locations: Tensor,
           attention_weights: Tensor) -> None:
    if value.dim() != 4:
        raise ValueError(f'value must be [B, N_v, heads, C], got {tuple(value.shape)}')
    if sampling_locations.dim() != 6 or sampling_locations.shape[-1] != 2:
        raise ValueError(f'sampling_locations must be [B, N_q, heads, L, P, 2], got {tuple(sampling_locations.shape)}')
    b, n_q, heads, levels, points, _ = sampling_locations.shape
    if tuple(attention_weights.shape) != (b, n_q, heads, levels, points):
        raise ValueError(f'attention_weights must be [B, N_q, heads, L, P] = {(b, n_q, heads, levels, points)}, '
                         f'got {tuple(attention_weights.shape)}')
    if value.shape[0] != b or value.shape[2] != heads:
        raise ValueError(f'value {tuple(value.shape)} and sampling_locations {tuple(sampling_locations.shape)} '
                         'disagree on batch or heads')
    if tuple(spatial_shapes.shape) != (levels, 2) or tuple(level_start_index.shape) != (levels, ):
        raise ValueError(f'spatial_shapes must be [L, 2] and level_start_index [L] with L={levels}, got '
                         f'{tuple(spatial_shapes.shape)} and {tuple(level_start_index.shape)}')


def grid_sample_attention(value: Tensor, level_sizes: Sequence[Tuple[int, int]], sampling_locations: Tensor,
                          attention_weights: Tensor) -> Tensor:
    """The pure-PyTorch sampling (one ``grid_sample`` per level) with the level sizes as Python numbers.

    mmcv's ``multi_scale_deformable_attn_pytorch`` reads them from the ``spatial_shapes`` tensor, which
    an exporter can only record as constants; given as (symbolic) ints, they stay functions of the
    input size, so an exported graph serves any input size.

    Args:
        value: ``[B, N_v, M, C]``; level_sizes: L pairs (H_l, W_l) with ``sum H_l * W_l = N_v``.
        sampling_locations: ``[B, N_q, M, L, P, 2]`` normalised (x, y); attention_weights: ``[B, N_q, M, L, P]``.

    Returns:
        ``[B, N_q, M * C]``.
    """
    batch, _, heads, channels = value.shape
    _, num_query, _, levels, points, _ = sampling_locations.shape
    grids = 2 * sampling_locations - 1  # grid_sample's [-1, 1] corners-at-pixel-edges convention
    samples = []
    for level, (v, (h, w)) in enumerate(zip(value.split([h * w for h, w in level_sizes], dim=1), level_sizes)):
        v = v.flatten(2).transpose(1, 2).reshape(batch * heads, channels, h, w)
        grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)                 # [B*M, N_q, P, 2]
        samples.append(F.grid_sample(v, grid, mode='bilinear', padding_mode='zeros', align_corners=False))
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, num_query, levels * points)
    out = (torch.stack(samples, dim=-2).flatten(-2) * weights).sum(-1)          # [B*M, C, N_q]
    return out.view(batch, heads * channels, num_query).transpose(1, 2).contiguous()


def multi_scale_deformable_attention(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                                     sampling_locations: Tensor, attention_weights: Tensor,
                                     im2col_step: int = 64) -> Tensor:
    """Sample ``value`` at the points of every query and sum them with their attention weights.

    Args:
        value: ``[B, N_v, M, C]`` all levels' tokens, per head.
        spatial_shapes: ``LongTensor[L, 2]`` (H_l, W_l); ``sum_l H_l * W_l`` must equal N_v.
        level_start_index: ``LongTensor[L]`` first token of each level in N_v.
        sampling_locations: ``[B, N_q, M, L, P, 2]`` normalised (x, y); (0, 0) is the top-left
            corner of the map, (1, 1) the bottom-right; points outside sample zeros.
        attention_weights: ``[B, N_q, M, L, P]``.
        im2col_step: mmcv's CUDA kernel batching (unused on CPU).

    Returns:
        ``[B, N_q, M * C]`` in :func:`sampling_dtype` of ``value.dtype``. Differentiable w.r.t.
        value, sampling_locations and attention_weights.
    """
    _check(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    dtype = sampling_dtype(value.dtype)
    with torch.autocast(device_type=value.device.type, enabled=False):
        value, sampling_locations, attention_weights = (
            t.to(dtype) for t in (value, sampling_locations, attention_weights))
        if uses_pytorch_deform_attn():
            return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations, attention_weights)
        if value.is_cuda:
            from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
            return MultiScaleDeformableAttnFunction.apply(value, spatial_shapes, level_start_index,
                                                          sampling_locations, attention_weights, im2col_step)
        if value.device.type == 'cpu' and load_cpu_kernel():
            return torch.ops.m2f_mm.ms_deform_attn_forward(value, spatial_shapes.cpu(), level_start_index.cpu(),
                                                           sampling_locations, attention_weights)
        return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations, attention_weights)


class MSDeformAttn(MultiScaleDeformableAttention):
    """mmcv's ``MultiScaleDeformableAttention`` (same parameters, init and state_dict keys) running
    :func:`multi_scale_deformable_attention`: the compiled kernel on CPU, mmcv's on CUDA.

    Dropout is not supported (Mask2Former uses none); everything else behaves as mmcv's module.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.dropout.p != 0.0:
            raise M2FConfigError(f'MSDeformAttn: dropout is not supported, got {self.dropout.p}')

    def forward(self, query: Tensor, key: Optional[Tensor] = None, value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None, query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None, reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None, level_start_index: Optional[Tensor] = None,
                level_sizes: Optional[Sequence[Tuple[int, int]]] = None, **kwargs) -> Tensor:
        """
        Args:
            query: ``[B, N_q, D]`` (``[N_q, B, D]`` when not batch_first).
            value: ``[B, N_v, D]``; defaults to ``query``. ``key`` is unused (as in mmcv).
            identity: residual added to the output; defaults to ``query`` (without position).
            query_pos: added to ``query`` before predicting offsets and weights.
            key_padding_mask: ``BoolTensor[B, N_v]``, True = padded token (its value is zeroed).
            reference_points: ``[B, N_q, L, 2]`` normalised (x, y) or ``[B, N_q, L, 4]`` boxes.
            spatial_shapes: ``LongTensor[L, 2]``; level_start_index: ``LongTensor[L]``.
            level_sizes: optional, ``spatial_shapes`` as L Python pairs (H_l, W_l); inside
                :func:`pytorch_deform_attn` they replace the tensor (:func:`grid_sample_attention`), so
                that an exported graph keeps the sizes symbolic.

        Returns:
            ``[B, N_q, D]`` (``[N_q, B, D]`` when not batch_first): output projection + identity.
        """
        if kwargs:  # mmcv's module swallows extra keywords; a dropped argument here would change nothing silently
            raise TypeError(f'MSDeformAttn.forward() got unexpected keyword arguments {sorted(kwargs)}; it takes '
                            'query, key, value, identity, query_pos, key_padding_mask, reference_points, '
                            'spatial_shapes, level_start_index and level_sizes')
        value = query if value is None else value
        identity = query if identity is None else identity
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query, value = query.transpose(0, 1), value.transpose(0, 1)
        batch, num_query, _ = query.shape
        num_value = value.shape[1]
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(batch, num_value, self.num_heads, -1)
        # Offsets, weights and locations in the sampling dtype (fp32 under autocast), see above.
        dtype = sampling_dtype(value.dtype)
        offsets = self.sampling_offsets(query).to(dtype).view(batch, num_query, self.num_heads, self.num_levels,
                                                              self.num_points, 2)
        weights = self.attention_weights(query).to(dtype).view(batch, num_query, self.num_heads, -1).softmax(-1)
        weights = weights.view(batch, num_query, self.num_heads, self.num_levels, self.num_points)
        ref = reference_points[:, :, None, :, None, :]
        symbolic = level_sizes is not None and uses_pytorch_deform_attn()
        if reference_points.shape[-1] == 2:
            # offsets are in pixels of their level: normalise by (W_l, H_l)
            if symbolic:  # tensor x size: the size stays a function of the input (see grid_sample_attention)
                one = offsets.new_ones(())
                normaliser = torch.stack([torch.stack([one * w, one * h]) for h, w in level_sizes])
            else:
                normaliser = spatial_shapes.flip(-1).to(offsets.dtype)
            locations = ref + offsets / normaliser[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            locations = ref[..., :2] + offsets / self.num_points * ref[..., 2:] * 0.5
        else:
            raise ValueError(f'reference_points must end in 2 or 4 values, got {tuple(reference_points.shape)}')
        if symbolic:
            out = grid_sample_attention(value.to(dtype), level_sizes, locations, weights)
        else:
            out = multi_scale_deformable_attention(value, spatial_shapes, level_start_index, locations, weights,
                                                   self.im2col_step)
        if not torch.is_autocast_enabled(out.device.type):
            out = out.to(self.output_proj.weight.dtype)
        out = self.output_proj(out)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out + identity

