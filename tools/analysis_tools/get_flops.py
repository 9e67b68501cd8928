"""Count a model's FLOPs and parameters at a given input size.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--backend mmengine|fvcore] [--cfg-options ...]

Counting convention (the paper's): one fused multiply-add = one FLOP, counted by tracing the
forward with fvcore's rules -- the original code's ``tools/analyze_model.py`` used fvcore
(``pip install -e .[analysis]`` for --backend fvcore); --backend mmengine (default, no extra
package) is mmengine's port of the same counter and gives the same totals. What is counted: the
network's tensor forward on one padded image of H x W -- backbone, pixel decoder, masked-attention
transformer decoder (its fused attention counted as the two matmuls it replaces) and the class / mask
predictions of every decoder layer. Element-wise ops count zero, as in fvcore. Not counted: the
bilinear sampling inside multi-scale deformable attention (an mmcv op; the original counted its CUDA
op as zero too), data preprocessing, and the panoptic / instance / semantic fusion at image size.
The paper reports 226G (R50) and 868G (Swin-L) averaged over COCO val images resized to a short
side of 800; a typical 640x480 COCO image becomes 800x1067, padded to 800x1088 (the default).
"""
import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402,F401  (must come first: checks the install, registers m2f_mm)

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

PAPER_GFLOPS = {'r50': 226, 'swin-l': 868}


class TensorForward(torch.nn.Module):
    """The model's tensor-mode forward on [1, 3, H, W] images with fixed data samples (for tracing)."""

    def __init__(self, model: torch.nn.Module, data_samples: Sequence) -> None:
        super().__init__()
        self.model, self.data_samples = model, list(data_samples)

    def forward(self, inputs: torch.Tensor):
        return self.model._forward(inputs, self.data_samples)


def build(cfg: Config, shape):
    """-> (model in eval mode, TensorForward, inputs [1, 3, H, W])."""
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    cfg.model.backbone.init_cfg = None  # FLOPs do not depend on the weights
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(cfg.model).eval()
    h, w = shape
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
                scale_factor=(1.0, 1.0))
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=meta)
    else:
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=meta)
    torch.manual_seed(0)
    return model, TensorForward(model, [sample]), torch.randn(1, 3, h, w)


def sdpa_flops(inputs, outputs) -> int:
    """aten::scaled_dot_product_attention(q [.., Lq, E], k [.., Lk, E], v [.., Lk, Ev]): the two matmuls
    q k^T and softmax(.) v, as fvcore counts them when attention is written with bmm / matmul (the
    original code's nn.MultiheadAttention)."""
    def shape(value):
        return value.type().sizes()
    q, k, v = (shape(x) for x in inputs[:3])
    batch = 1
    for size in q[:-2]:
        batch *= size
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count(module: torch.nn.Module, inputs: torch.Tensor, backend: str):
    """-> (total FLOPs, {module name: FLOPs}, {unsupported op: calls}) with the chosen counter."""
    if backend == 'fvcore':
        try:
            from fvcore.nn import FlopCountAnalysis as Analyzer
        except ImportError:
            raise SystemExit('get_flops: --backend fvcore needs fvcore: `pip install -e .[analysis]` '
                             '(or `pip install fvcore`)')
    else:
        from mmengine.analysis import FlopAnalyzer as Analyzer
    analyzer = Analyzer(module, (inputs, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flops)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        return analyzer.total(), analyzer.by_module(), dict(analyzer.unsupported_ops())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                     epilog='Counting convention: see the module docstring (1 multiply-add = 1 FLOP).')
    parser.add_argument('config', help='an m2f_mm config (mmdet or mmseg)')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1088], metavar=('H', 'W'),
                        help='padded input height and width (multiples of 32)')
    parser.add_argument('--backend', choices=['mmengine', 'fvcore'], default='mmengine',
                        help='the counter: mmengine.analysis, or fvcore as the original code')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    if any(s % 32 for s in args.shape):
        parser.error(f'--shape must be multiples of 32 (the padded batch), got {args.shape}')
    from m2f_mm.config import load_resolved
    cfg = load_resolved(args.config, args.cfg_options)  # class counts from the config's data
    model, module, inputs = build(cfg, args.shape)
    total, by_module, unsupported = count(module, inputs, args.backend)
    params = sum(p.numel() for p in model.parameters())
    print(f'config: {args.config}')
    print(f'input: 1 x 3 x {args.shape[0]} x {args.shape[1]}; counter: {args.backend} (1 multiply-add = 1 FLOP)')
    print(f'FLOPs: {total / 1e9:.1f} G    parameters: {params / 1e6:.2f} M')
    for name in ('model.backbone', 'model.neck', 'model.panoptic_head.pixel_decoder',
                 'model.panoptic_head.transformer_decoder', 'model.decode_head.pixel_decoder',
                 'model.decode_head.transformer_decoder'):
        if by_module.get(name):
            print(f'  {name[6:]}: {by_module[name] / 1e9:.1f} G')
    if unsupported:
        print('not counted (no FLOP rule): ' + ', '.join(f'{op} x{n}' for op, n in sorted(unsupported.items())))
    name = osp.basename(args.config)
    for key, gflops in PAPER_GFLOPS.items():
        if key in name:
            print(f'paper: {gflops} G (averaged over COCO val images, short side 800); here {total / 1e9:.1f} G '
                  f'= {total / 1e9 / gflops:.2f} x at {args.shape[0]}x{args.shape[1]}')
    return 0


if __name__ == '__main__':
    _env_guard.run_tool(main)
