"""Semantic label PNGs (value = class) -> mmseg label PNGs (0..K-1, 255 = ignore) + classes.json, in m2f_mm's layout.

    python tools/dataset_converters/semantic_pngs.py --labels labels/train --image-dir images/train \
        --classes classes.json --out data/mine --split train [--ignore 0]

Per image IMAGE_DIR/<stem>.<ext>, its label PNG LABELS/<stem>.png (grey, palette or 16-bit PNG).
The class table (JSON) is a list of names (value k = class k, 255 ignored):
    ["background", "coin"]
(or {"classes": [names], "palette": [[R, G, B], ...]}, e.g. a classes.json written here), or lists each class's values (several values, or several entries with one name, merge: a remap)
and the values to ignore (default [255]):
    {"classes": [{"name": "road", "value": 7, "color": [128, 64, 128]},
                 {"name": "vehicle", "values": [26, 27, 28]}],
     "ignore": [0, 255]}
Output label = the class's position among the distinct names. A value neither listed nor ignored,
or a label PNG whose size differs from its image, is refused with one line. Writes only the
images, OUT/annotations/semantic_S/ and OUT/classes.json (names, palette, img_suffix), which
configs/m2f_r18-q24_1xb8-2k_synthetic-semantic.py-style configs read (BaseSegDataset,
data_prefix img_path=S, seg_map_path=annotations/semantic_S)."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # _convert_cli.py beside this file, also under runpy
from _convert_cli import add_output_options, parser, report, run  # noqa: E402

from m2f_mm.datasets.convert.semantic_pngs import convert_split  # noqa: E402


def main() -> int:
    p = parser(__doc__)
    p.add_argument('--labels', required=True, help='folder of label PNGs named <image stem><suffix>')
    p.add_argument('--image-dir', required=True, help='folder of the images (every image is converted)')
    p.add_argument('--classes', required=True, help='the class table JSON (format above)')
    p.add_argument('--ignore', type=int, nargs='+', default=[], help='more PNG values to ignore (become 255)')
    p.add_argument('--label-suffix', default='.png', help='label file name = <image stem> + this (default .png)')
    add_output_options(p)
    args = p.parse_args()
    return report(convert_split(args.labels, args.image_dir, args.classes, args.out, args.split, ignore=args.ignore,
                                label_suffix=args.label_suffix, images=args.images))


if __name__ == '__main__':
    run(main)
