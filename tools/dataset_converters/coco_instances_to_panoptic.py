"""COCO instances (polygons or RLE, iscrowd) + optional stuff label PNGs -> COCO panoptic, in m2f_mm's layout.

    python tools/dataset_converters/coco_instances_to_panoptic.py instances_train.json --image-dir images/train \
        --out data/mine --split train [--stuff-pngs stuff/train --stuff-classes stuff.json]

No panopticapi. Overlaps: things are painted over stuff; crowd regions first, then the instances
largest first, so the SMALLER of two overlapping instances is on top (equal areas: the later
annotation on top); an instance left with no visible pixel is dropped (counted as "hidden").
Crowd annotations become iscrowd segments. The output instances JSON holds the visible masks.

Stuff label PNGs (optional, one per image, STUFF_PNGS/<image stem>.png, grey / palette / 16-bit)
and their class table STUFF_CLASSES (JSON), mapping every value that occurs to a stuff class name,
to a thing class name of the instances file (those pixels stay VOID unless an instance covers
them) or to null (void); an entry may carry a colour:
    {"0": null, "1": "sky", "2": {"name": "grass", "color": [0, 160, 0]}, "3": "coin", "255": null}
Without stuff PNGs, every pixel outside the instances is VOID.
Categories: the instances file's (things, with their ids), then the stuff classes (new ids after
the largest thing id); label order = that order, things first."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # _convert_cli.py beside this file, also under runpy
from _convert_cli import add_output_options, parser, report, run  # noqa: E402

from m2f_mm.datasets.convert.coco_instances import convert_split  # noqa: E402


def main() -> int:
    p = parser(__doc__)
    p.add_argument('instances', help='COCO instances JSON of the split (images, annotations, categories)')
    p.add_argument('--image-dir', required=True, help='folder the "file_name"s of the instances JSON are relative to')
    p.add_argument('--stuff-pngs', help='folder of stuff label PNGs named after the images (optional)')
    p.add_argument('--stuff-classes', help='JSON table: stuff PNG value -> class name or null (with --stuff-pngs)')
    add_output_options(p)
    args = p.parse_args()
    return report(convert_split(args.instances, args.image_dir, args.out, args.split, stuff_dir=args.stuff_pngs,
                                stuff_table=args.stuff_classes, images=args.images))


if __name__ == '__main__':
    run(main)
