"""Export an m2f_mm checkpoint to ONNX (+ the spec JSON the runtime reads) and optionally verify it.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out model.onnx [--shape H W | --dynamic]
        [--all-sets] [--opset 17] [--verify] [--image IMAGE] [--tol 1e-4]

CONFIG may be '-' to use the config stored in the checkpoint. The ONNX graph maps the normalised, padded
image [1, 3, H, W] to the final prediction set's cls_logits [1, Q, C+1] and mask_logits [1, Q, H/4, W/4];
NAME.m2f.json beside it holds the preprocessing, the classes and the fusion settings, so
m2f_mm.deploy.OnnxModel and tools/demo/image_demo.py --backend onnxruntime need no config. --dynamic leaves
height and width free (results equal PyTorch's for every image); --shape fixes them (default: the test
pipeline's Resize scale padded to the size divisor), for runtimes that want static shapes.
--verify runs onnxruntime and eager PyTorch on one image and exits 1 when max |diff| / max(1, max |logit|)
exceeds --tol. Needs the deploy extra (pip install -e '.[deploy]'). docs/deployment.md has the details.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402,F401  (must come first: checks the install, registers m2f_mm)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help="an m2f_mm config (mmdet or mmseg), or '-' for the checkpoint's own")
    parser.add_argument('checkpoint', help='checkpoint (.pth) trained with the config')
    parser.add_argument('--out', required=True, help='the .onnx file to write (NAME.m2f.json is written beside it)')
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'), default=None,
                       help='fixed network input size, multiples of 32 (default: the test Resize scale, padded)')
    sizes.add_argument('--dynamic', action='store_true',
                       help='any input height and width: each image padded to the size divisor, as in PyTorch')
    parser.add_argument('--all-sets', action='store_true',
                        help='output every prediction set, stacked [S, 1, Q, ...] (the runtime fuses the last)')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (16 or later: GridSample)')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with eager PyTorch on one image; exit 1 above --tol')
    parser.add_argument('--image', default=None, help='the image --verify uses (default: seeded noise)')
    parser.add_argument('--tol', type=float, default=1e-4,
                        help='--verify tolerance on max |diff| / max(1, max |logit|)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from m2f_mm.apis import init_model
    from m2f_mm.deploy import MissingDeployExtra, export_onnx, verify
    from m2f_mm.deploy.runtime import read_image
    try:
        model = init_model(None if args.config == '-' else args.config, args.checkpoint, device='cpu')
        spec = export_onnx(model, args.out, args.shape, args.opset, dynamic=args.dynamic, all_sets=args.all_sets)
    except (MissingDeployExtra, FileNotFoundError, ValueError) as err:
        raise SystemExit(f'pytorch2onnx: {err}')
    height, width = spec['input_shape'] or ('H', 'W')
    print(f'exported {args.out} (input 1x3x{height}x{width}, opset {args.opset}, {spec["exporter"]}) '
          f'and {args.out[:-5] if args.out.endswith(".onnx") else args.out}.m2f.json')
    if not args.verify:
        return 0
    result = verify(model, args.out, read_image(args.image) if args.image else None, tol=args.tol)
    print(f'verify: max |diff| cls_logits {result["cls_max_diff"]:.3g}, mask_logits {result["mask_max_diff"]:.3g}; '
          f'relative to the logits\' scale {result["scale"]:.3g}: {result["relative"]:.3g} '
          f'(tolerance {args.tol:g}) -> {"ok" if result["ok"] else "FAILED"}')
    return 0 if result['ok'] else 1


if __name__ == '__main__':
    _env_guard.run_tool(main)
