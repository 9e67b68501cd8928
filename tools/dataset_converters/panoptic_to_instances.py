"""COCO panoptic (JSON + PNGs) -> the COCO instances JSON of its thing segments, for mask AP (CocoMetric).

    python tools/dataset_converters/panoptic_to_instances.py DATA/annotations/panoptic_val.json \
        [--png-dir DATA/annotations/panoptic_val] [--out DATA/annotations/instances_val.json]

The panoptic configs evaluate mask AP against annotations/instances_S.json beside panoptic_S.json;
a dataset that has panoptic annotations only gets it from here. Each thing segment becomes one
instance (RLE mask, box and area from the PNG; crowd segments keep iscrowd=1); image ids and thing
categories are the panoptic file's."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # _convert_cli.py beside this file, also under runpy
from _convert_cli import run  # noqa: E402

import argparse  # noqa: E402

from m2f_mm.datasets.convert.panoptic_to_instances import convert  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('panoptic', help='COCO panoptic JSON (images, annotations with segments_info, categories)')
    p.add_argument('--png-dir', help='its PNG folder (default: the JSON path without .json)')
    p.add_argument('--out', help='instances JSON to write (default: the same folder, "panoptic" -> "instances" in '
                                 'the name)')
    args = p.parse_args()
    png_dir = args.png_dir or osp.splitext(args.panoptic)[0]
    folder, name = osp.split(args.panoptic)
    out = args.out or osp.join(folder, name.replace('panoptic', 'instances') if 'panoptic' in name
                               else 'instances_' + name)
    counts = convert(args.panoptic, png_dir, out)
    print(f'wrote {out}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    return 0


if __name__ == '__main__':
    run(main)
