"""m2f_mm.ops multi-scale deformable attention: the compiled CPU kernel against mmcv's op.

mmcv's ``multi_scale_deformable_attn_pytorch`` (grid_sample per level) is the reference: outputs
and the gradients w.r.t. value, sampling locations and attention weights must agree within 1e-5
of each tensor's largest magnitude (fp32), on level shapes that include non-square and 1-pixel
maps and on points inside, on the border of and outside the maps (zero padding).
"""
import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttention, multi_scale_deformable_attn_pytorch

from m2f_mm.ops import MSDeformAttn, multi_scale_deformable_attention, sampling_dtype
from m2f_mm.ops import _extension

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
LEVEL_SETS = {
    'square': [(8, 8), (4, 4), (2, 2)],
    'non-square + 1 px': [(5, 7), (3, 1), (1, 1), (1, 6)],
    'mask2former-like': [(3, 4), (6, 8), (12, 16)],
}


def _inputs(shapes, batch=2, queries=11, heads=2, channels=4, points=3, dtype=torch.float32, seed=0, spread=1.6):
    gen = torch.Generator().manual_seed(seed)
    shapes_t = torch.tensor(shapes, dtype=torch.long)
    start = torch.cat([shapes_t.new_zeros(1), shapes_t.prod(1).cumsum(0)[:-1]])
    value = torch.randn(batch, int(shapes_t.prod(1).sum()), heads, channels, generator=gen, dtype=dtype)
    # spread > 1: some points fall outside [0, 1] (partly or wholly outside the map)
    loc = (torch.rand(batch, queries, heads, len(shapes), points, 2, generator=gen, dtype=dtype) - 0.5) * spread + 0.5
    attn = torch.rand(batch, queries, heads, len(shapes), points, generator=gen, dtype=dtype)
    return value, shapes_t, start, loc, attn


def _assert_close(got, expected, name, tol=1e-5):
    scale = max(1.0, float(expected.abs().max()))
    err = float((got - expected).abs().max())
    assert err <= tol * scale, f'{name}: max |diff| {err:.3g} > {tol} * {scale:.3g}'


def _run(fn, value, shapes, start, loc, attn, grad_out):
    leaves = [t.clone().requires_grad_() for t in (value, loc, attn)]
    out = fn(leaves[0], shapes, start, leaves[1], leaves[2])
    out.backward(grad_out)
    return out.detach(), [t.grad for t in leaves]


def _mmcv(value, shapes, start, loc, attn):
    return multi_scale_deformable_attn_pytorch(value, shapes, loc, attn)


@pytest.fixture(scope='module')
def kernel():
    if not _extension.load_cpu_kernel():
        pytest.skip(f'compiled CPU kernel unavailable: {_extension.cpu_kernel_status()}')


@pytest.mark.parametrize('levels', list(LEVEL_SETS), ids=list(LEVEL_SETS))
def test_output_and_gradients_equal_mmcv(kernel, levels):
    value, shapes, start, loc, attn = _inputs(LEVEL_SETS[levels])
    grad_out = torch.randn(value.shape[0], loc.shape[1], value.shape[2] * value.shape[3],
                           generator=torch.Generator().manual_seed(1))
    ref_out, ref_grads = _run(_mmcv, value, shapes, start, loc, attn, grad_out)
    out, grads = _run(multi_scale_deformable_attention, value, shapes, start, loc, attn, grad_out)
    assert _extension.cpu_kernel_status() == 'compiled'
    assert out.shape == ref_out.shape == (2, 11, 8) and out.dtype == torch.float32
    _assert_close(out, ref_out, 'output')
    for name, got, expected in zip(('value', 'sampling_locations', 'attention_weights'), grads, ref_grads):
        _assert_close(got, expected, f'grad {name}')


def test_zero_padding_outside_the_map(kernel):
    """Wholly outside: zero output, zero gradients. Half a pixel outside the border: only the
    inside corners count, as grid_sample's zero padding (x = -0.25 px has weight 0.75 on column 0)."""
    shapes = torch.tensor([[2, 3]])
    start = torch.zeros(1, dtype=torch.long)
    value = torch.arange(6, dtype=torch.float32).view(1, 6, 1, 1) + 1  # map [[1, 2, 3], [4, 5, 6]]
    # (x, y) normalised: far outside, left border (x = -0.25 px) on row 0's centre, exact centre of (1, 1)
    loc = torch.tensor([[-1.0, 0.25], [(-0.25 + 0.5) / 3, 0.25], [1.5 / 3, 0.75]]).view(1, 3, 1, 1, 1, 2)
    attn = torch.ones(1, 3, 1, 1, 1)
    v, l, a = (t.clone().requires_grad_() for t in (value, loc, attn))
    out = multi_scale_deformable_attention(v, shapes, start, l, a)
    torch.testing.assert_close(out.view(3), torch.tensor([0.0, 0.75 * 1, 5.0]))
    out.sum().backward()
    assert l.grad[0, 0].abs().sum() == 0 and a.grad[0, 0].abs().sum() == 0
    torch.testing.assert_close(v.grad.view(6), torch.tensor([0.75, 0, 0, 0, 1, 0]))
    expected = _mmcv(value, shapes, start, loc, attn)
    torch.testing.assert_close(out.detach(), expected)


def test_gradcheck_fp64(kernel):
    value, shapes, start, loc, attn = _inputs([(3, 2), (1, 1), (2, 3)], batch=1, queries=3, heads=2, channels=2,
                                              points=2, dtype=torch.float64, seed=3, spread=1.3)
    # keep points off exact pixel centres / integer coordinates, where the bilinear weight is not smooth
    inputs = (value.requires_grad_(), shapes, start, loc.requires_grad_(), attn.requires_grad_())
    assert torch.autograd.gradcheck(multi_scale_deformable_attention, inputs, eps=1e-6, atol=1e-5)
    assert multi_scale_deformable_attention(*inputs).dtype == torch.float64


def test_custom_op_registration(kernel):
    """Schema, fake (meta) kernel and autograd registration: what torch.compile relies on."""
    value, shapes, start, loc, attn = _inputs([(3, 4), (2, 2)], queries=5)
    args = (value.requires_grad_(), shapes, start, loc.requires_grad_(), attn.requires_grad_())
    torch.library.opcheck(torch.ops.m2f_mm.ms_deform_attn_forward.default, args,
                          test_utils=('test_schema', 'test_autograd_registration', 'test_faketensor'))


def test_dtype_policy_bf16_autocast_samples_in_fp32(kernel):
    value, shapes, start, loc, attn = _inputs(LEVEL_SETS['mask2former-like'])
    value16 = value.to(torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = multi_scale_deformable_attention(value16, shapes, start, loc, attn)
    assert out.dtype == sampling_dtype(torch.bfloat16) == torch.float32
    expected = multi_scale_deformable_attention(value16.float(), shapes, start, loc, attn)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_module_equals_mmcv_module_under_same_weights(kernel):
    torch.manual_seed(0)
    cfg = dict(embed_dims=16, num_heads=2, num_levels=3, num_points=2, dropout=0.0, batch_first=True)
    ref, ours = MultiScaleDeformableAttention(**cfg), MSDeformAttn(**cfg)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    ours.load_state_dict(ref.state_dict(), strict=True)
    shapes = torch.tensor(LEVEL_SETS['mask2former-like'])
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    n = int(shapes.prod(1).sum())
    query, pos = torch.randn(2, n, 16), torch.randn(2, n, 16)
    refs = torch.rand(2, n, 3, 2)
    outs = []
    for module in (ref, ours):
        module.zero_grad()
        q = query.clone().requires_grad_()
        out = module(query=q, value=q, query_pos=pos, reference_points=refs, spatial_shapes=shapes,
                     level_start_index=start)
        out.pow(2).sum().backward()
        outs.append((out.detach(), q.grad, module.sampling_offsets.weight.grad, module.value_proj.weight.grad))
    for name, got, expected in zip(('out', 'grad query', 'grad offsets', 'grad value_proj'), outs[1], outs[0]):
        _assert_close(got, expected, name)


def test_fallback_logs_once_and_matches(monkeypatch):
    """A failed build falls back to mmcv's path with one log line; the results do not change."""
    value, shapes, start, loc, attn = _inputs(LEVEL_SETS['square'])
    monkeypatch.setattr(_extension, '_state', dict(_extension._state, loaded=None, reason=None))

    def broken_build():
        raise RuntimeError('Ninja is required to load C++ extensions')
    logged = []
    monkeypatch.setattr(_extension, '_build', broken_build)
    monkeypatch.setattr(_extension, 'print_log', lambda msg, **kwargs: logged.append((msg, kwargs)))
    out = multi_scale_deformable_attention(value, shapes, start, loc, attn)
    multi_scale_deformable_attention(value, shapes, start, loc, attn)
    assert len(logged) == 1 and '\n' not in logged[0][0]
    assert 'Ninja is required' in logged[0][0] and 'pure-PyTorch' in logged[0][0]
    assert _extension.cpu_kernel_status().startswith('pytorch (RuntimeError: Ninja')
    torch.testing.assert_close(out, _mmcv(value, shapes, start, loc, attn), rtol=0, atol=0)


def test_pytorch_switch_is_scoped_to_the_block_and_thread(monkeypatch):
    """pytorch_deform_attn() routes calls to mmcv's grid_sample path inside the block only (nested, after an
    exception, and not in another thread), without touching M2F_MM_CPU_KERNEL."""
    import threading

    from m2f_mm.ops import ms_deform_attn, pytorch_deform_attn, uses_pytorch_deform_attn
    value, shapes, start, loc, attn = _inputs(LEVEL_SETS['non-square + 1 px'])
    paths = []

    def spy(*args):
        paths.append('pytorch')
        return multi_scale_deformable_attn_pytorch(*args)
    monkeypatch.setattr(ms_deform_attn, 'multi_scale_deformable_attn_pytorch', spy)
    monkeypatch.setattr(ms_deform_attn, 'load_cpu_kernel', lambda: paths.append('kernel') or False)
    monkeypatch.delenv('M2F_MM_CPU_KERNEL', raising=False)
    with pytorch_deform_attn():
        with pytorch_deform_attn():
            out = multi_scale_deformable_attention(value, shapes, start, loc, attn)
        assert uses_pytorch_deform_attn()
        other = []
        thread = threading.Thread(target=lambda: other.append(uses_pytorch_deform_attn()))
        thread.start()
        thread.join()
        assert other == [False]
    assert paths == ['pytorch'] and not uses_pytorch_deform_attn()
    with pytest.raises(RuntimeError), pytorch_deform_attn():
        raise RuntimeError('boom')
    assert not uses_pytorch_deform_attn()
    multi_scale_deformable_attention(value, shapes, start, loc, attn)
    assert paths == ['pytorch', 'kernel', 'pytorch']  # outside: the kernel is asked for first
    torch.testing.assert_close(out, _mmcv(value, shapes, start, loc, attn), rtol=0, atol=0)


@pytest.mark.parametrize('levels', list(LEVEL_SETS))
def test_grid_sample_attention_with_python_sizes_equals_mmcv(levels):
    """The exporters' path (level sizes as Python numbers) computes what mmcv's pure-PyTorch function does."""
    from m2f_mm.ops import grid_sample_attention
    value, shapes, start, loc, attn = _inputs(LEVEL_SETS[levels])
    got = grid_sample_attention(value, [tuple(s) for s in shapes.tolist()], loc, attn)
    torch.testing.assert_close(got, _mmcv(value, shapes, start, loc, attn), rtol=0, atol=1e-6)


def test_module_with_level_sizes_inside_the_switch_equals_the_kernel():
    """MSDeformAttn(level_sizes=...) uses them only inside pytorch_deform_attn(), with the same output."""
    from m2f_mm.ops import pytorch_deform_attn
    torch.manual_seed(0)
    sizes = LEVEL_SETS['mask2former-like']
    module = MSDeformAttn(embed_dims=8, num_heads=2, num_levels=3, num_points=2, dropout=0.0, batch_first=True).eval()
    shapes = torch.tensor(sizes)
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    tokens = torch.randn(2, int(shapes.prod(1).sum()), 8)
    ref = torch.rand(2, tokens.shape[1], 3, 2)
    args = dict(query=tokens, value=tokens, reference_points=ref, spatial_shapes=shapes, level_start_index=start)
    expected = module(**args)
    with pytorch_deform_attn():
        got = module(**args, level_sizes=sizes)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)

    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['valid_ratios'\]"):
        module(**args, valid_ratios=torch.ones(2, 3, 2))  # mmcv's module would ignore it


def test_bad_shapes_name_the_argument():
    value, shapes, start, loc, attn = _inputs(LEVEL_SETS['square'])
    with pytest.raises(ValueError, match='attention_weights must be'):
        multi_scale_deformable_attention(value, shapes, start, loc, attn[..., :1])
    with pytest.raises(ValueError, match='spatial_shapes must be'):
        multi_scale_deformable_attention(value, shapes[:2], start, loc, attn)


@requires_cuda
def test_cuda_uses_mmcv_kernel_and_matches_cpu_kernel():
    value, shapes, start, loc, attn = _inputs(LEVEL_SETS['mask2former-like'])
    grad_out = torch.randn(2, 11, 8)
    cpu_out, cpu_grads = _run(multi_scale_deformable_attention, value, shapes, start, loc, attn, grad_out)
    cuda_out, cuda_grads = _run(multi_scale_deformable_attention, value.cuda(), shapes.cuda(), start.cuda(),
                                loc.cuda(), attn.cuda(), grad_out.cuda())
    _assert_close(cuda_out.cpu(), cpu_out, 'output', tol=1e-4)
    for got, expected in zip(cuda_grads, cpu_grads):
        _assert_close(got.cpu(), expected, 'grad', tol=1e-4)
    with torch.autocast('cuda', dtype=torch.bfloat16):  # mmcv's CUDA kernel has no bf16: we run it in fp32
        out = multi_scale_deformable_attention(value.cuda().bfloat16(), shapes.cuda(), start.cuda(), loc.cuda(),
                                               attn.cuda())
    assert out.dtype == torch.float32
