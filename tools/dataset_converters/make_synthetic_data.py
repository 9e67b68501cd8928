"""Generate the bundled synthetic panoptic dataset (COCO panoptic + instance JSON, mmseg label PNGs).

    python tools/dataset_converters/make_synthetic_data.py [--out data/synthetic] [--num-train 1000]
        [--num-val 100] [--size 192 192] [--seed 0]

Deterministic from --seed; see m2f_mm/datasets/synthetic.py for the layout and the class list,
m2f_mm/datasets/synthetic_scene.py for what a scene holds and docs/demo.md for why.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402  (must come first: checks mmcv, registers m2f_mm)

from mmengine.utils import ProgressBar  # noqa: E402

from m2f_mm.datasets.synthetic import (DEFAULT_NUM_TRAIN, DEFAULT_NUM_VAL, DEFAULT_SIZE,  # noqa: E402
                                       generate_dataset, validate_args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                     epilog='Layout and classes: m2f_mm/datasets/synthetic.py. The configs '
                                            'configs/*synthetic* read data/synthetic/.')
    parser.add_argument('--out', default='data/synthetic',
                        help='output folder: created, or a previous synthetic set there is replaced; '
                             'refused when it holds other files')
    parser.add_argument('--num-train', type=int, default=DEFAULT_NUM_TRAIN, help='number of training images (1 to 1000000)')
    parser.add_argument('--num-val', type=int, default=DEFAULT_NUM_VAL, help='number of validation images (1 to 1000000)')
    parser.add_argument('--size', type=int, nargs=2, default=list(DEFAULT_SIZE), metavar=('H', 'W'),
                        help='image height and width in pixels (each 32 to 2048)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (0 to 2**32-1); the same seed writes the same files')
    args = parser.parse_args()
    try:
        validate_args(args.num_train, args.num_val, args.size, args.seed)
    except ValueError as exc:
        print(f'make_synthetic_data: {exc}', file=sys.stderr)
        return 2
    print(f'generating {args.num_train} train + {args.num_val} val images of {args.size[0]}x{args.size[1]} '
          f'into {args.out} (seed {args.seed})')
    bar = ProgressBar(args.num_train + args.num_val)
    start = time.perf_counter()
    try:
        meta = generate_dataset(args.out, args.num_train, args.num_val, tuple(args.size), args.seed,
                                progress=bar.update)
    except ValueError as exc:
        print(f'\nmake_synthetic_data: {exc}', file=sys.stderr)
        return 2
    stats = meta['stats']['train']
    print(f'\ndone in {time.perf_counter() - start:.1f} s: {stats["instances_per_image"]} thing instances per '
          f'train image; segments per class {stats["segments_per_class"]}')
    return 0


if __name__ == '__main__':
    _env_guard.run_tool(main)
