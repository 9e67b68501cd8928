"""GPU only: mmcv's CUDA multi-scale deformable attention equals its pure-PyTorch path.

On CPU, M2FPixelDecoder runs mmcv's ``multi_scale_deformable_attn_pytorch`` (what the CPU parity
tests check); on GPU, mmcv's CUDA kernel. This pins the two together within 1e-4.
"""
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')

SHAPES = [(12, 16), (6, 8), (3, 4)]  # coarse-to-fine order does not matter to the op
HEADS, DIM, POINTS = 8, 32, 4


def _inputs(batch: int = 2, queries: int = 50, device: str = 'cuda'):
    gen = torch.Generator(device='cpu').manual_seed(0)
    num_value = sum(h * w for h, w in SHAPES)
    value = torch.randn(batch, num_value, HEADS, DIM, generator=gen)
    # include locations slightly outside [0, 1] so the zero-padding border handling is compared too
    locations = torch.rand(batch, queries, HEADS, len(SHAPES), POINTS, 2, generator=gen) * 1.2 - 0.1
    weights = torch.rand(batch, queries, HEADS, len(SHAPES) * POINTS, generator=gen).softmax(-1)
    weights = weights.view(batch, queries, HEADS, len(SHAPES), POINTS)
    shapes = torch.tensor(SHAPES, dtype=torch.long)
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    return [t.to(device) for t in (value, shapes, start, locations, weights)]


def test_cuda_kernel_forward_equals_pytorch_path():
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                   multi_scale_deformable_attn_pytorch)
    value, shapes, start, locations, weights = _inputs()
    cuda_out = MultiScaleDeformableAttnFunction.apply(value, shapes, start, locations, weights, 64)
    torch_out = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    assert cuda_out.shape == torch_out.shape == (2, 50, HEADS * DIM)
    torch.testing.assert_close(cuda_out, torch_out, atol=1e-4, rtol=1e-4)


def test_cuda_kernel_gradients_equal_pytorch_path():
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                   multi_scale_deformable_attn_pytorch)
    grads = []
    for use_kernel in (True, False):
        value, shapes, start, locations, weights = _inputs()
        for t in (value, locations, weights):
            t.requires_grad_(True)
        out = (MultiScaleDeformableAttnFunction.apply(value, shapes, start, locations, weights, 64) if use_kernel
               else multi_scale_deformable_attn_pytorch(value, shapes, locations, weights))
        out.pow(2).sum().backward()
        grads.append([value.grad, weights.grad])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


@pytest.fixture
def no_tf32():
    """cuDNN convs default to TF32 on Ampere+; compare in true fp32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_pixel_decoder_on_gpu_matches_cpu(no_tf32):
    from m2f_mm.models.pixel_decoder import M2FPixelDecoder
    torch.manual_seed(0)
    dec = M2FPixelDecoder(in_channels=[16, 32, 64, 128], feat_channels=64, out_channels=64, num_outs=3,
                          encoder=dict(num_layers=2, layer_cfg=dict(embed_dims=64, num_heads=8, num_levels=3,
                                                                    num_points=4, feedforward_channels=128)))
    with torch.no_grad():
        for p in dec.parameters():  # non-zero offsets / attention weights
            p.add_(torch.randn_like(p) * 0.05)
    dec.eval()
    feats = [torch.randn(2, c, 64 // s, 96 // s) for c, s in zip([16, 32, 64, 128], [4, 8, 16, 32])]
    with torch.no_grad():
        cpu_mask, cpu_ms = dec(feats)
        gpu_mask, gpu_ms = dec.cuda()([f.cuda() for f in feats])
    torch.testing.assert_close(gpu_mask.cpu(), cpu_mask, atol=1e-4, rtol=1e-4)
    for a, b in zip(gpu_ms, cpu_ms):
        torch.testing.assert_close(a.cpu(), b, atol=1e-4, rtol=1e-4)
