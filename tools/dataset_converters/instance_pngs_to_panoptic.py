"""Instance-id PNGs (one per image) + a class table, or + class PNGs -> COCO panoptic, in m2f_mm's layout.

    python tools/dataset_converters/instance_pngs_to_panoptic.py --pngs masks/train --image-dir images/train \
        --classes classes.json --out data/mine --split train [--class-pngs classes/train]

Per image IMAGE_DIR/<stem>.<ext>, its instance PNG PNGS/<stem>.png: each pixel an instance id,
0 = background / void (grey, palette or 16-bit PNG; an RGB PNG is read as R + 256 G + 256^2 B,
the COCO panoptic encoding). The class of every id comes from the class table (JSON):
    {"categories": [{"id": 1, "name": "coin", "isthing": 1},
                    {"id": 2, "name": "background", "isthing": 0}],
     "instances": {"*": {"1": 2},                  ids shared by every image: id 1 = background
                   "img_0001": {"2": 1, "3": 1}},  this image's ids 2 and 3 are coins
     "crowd": {"img_0001": [3]}}                   optional: ids that are crowd regions
or, with --class-pngs, from a class PNG per image (CLASS_PNGS/<stem>.png, each pixel a category id
of the table's "categories", 0 = void): an instance takes the class under it (one class per
instance), thing pixels with instance id 0 are VOID, instance ids on stuff pixels are ignored.
All pixels of one stuff class form one segment; each thing id one segment. An id without a class,
an id listed for an image but absent from its PNG, an instance over two classes, or a PNG whose
size differs from its image is refused with one line."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # _convert_cli.py beside this file, also under runpy
from _convert_cli import add_output_options, parser, report, run  # noqa: E402

from m2f_mm.datasets.convert.instance_pngs import convert_split  # noqa: E402


def main() -> int:
    p = parser(__doc__)
    p.add_argument('--pngs', required=True, help='folder of instance-id PNGs named <image stem>.png')
    p.add_argument('--image-dir', required=True, help='folder of the images (every image is converted)')
    p.add_argument('--classes', required=True, help='the class table JSON (format above)')
    p.add_argument('--class-pngs', help='folder of class PNGs named <image stem>.png (instead of the table\'s '
                                        '"instances")')
    add_output_options(p)
    args = p.parse_args()
    return report(convert_split(args.pngs, args.image_dir, args.classes, args.out, args.split,
                                class_png_dir=args.class_pngs, images=args.images))


if __name__ == '__main__':
    run(main)
