"""Mapillary Vistas v1.2 (or v2.0) -> the layout the Mapillary configs read (panoptic, instances, semantic).

    python tools/dataset_converters/mapillary.py data/mapillary_vistas_release --out data/mapillary_vistas \
        [--splits train val] [--workers 8]

Reads the release as downloaded (ROOT/config_v1.2.json; ROOT/{training,validation}/images/*.jpg;
.../v1.2/labels/*.png (label index per pixel); .../v1.2/instances/*.png (label * 256 + instance);
.../v1.2/panoptic/panoptic_2018.json + *.png) and writes OUT/{train,val}/ (images linked by
default), OUT/annotations/panoptic_S.json + panoptic_S/, instances_S.json, semantic_S/ and
OUT/classes.json. Classes: the 65 evaluated labels of v1.2 in the release's order (readable names,
mmseg's MapillaryDataset_v1 names); label 65 "Unlabeled" becomes 255 in the semantic PNGs and
VOID in the panoptic ones, as the original Mask2Former ignores it (ignore label 65). 37 of them are
things (the config's "instances": true). The configs configs/m2f_*mapillary* read OUT."""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # _convert_cli.py beside this file, also under runpy
from _convert_cli import run  # noqa: E402

from m2f_mm.datasets.convert.mapillary import SOURCES, SPLITS, convert_split  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('root', help='the release folder holding config_v1.2.json, training/ and validation/')
    p.add_argument('--out', required=True, help='the dataset root to write, e.g. data/mapillary_vistas')
    p.add_argument('--splits', nargs='+', default=['train', 'val'], choices=sorted(SPLITS),
                   help='train = training/, val = validation/ (default: both)')
    p.add_argument('--version', default='v1.2', help='annotation version: config_VERSION.json, */VERSION/ (default v1.2)')
    p.add_argument('--source', choices=SOURCES, default='panoptic',
                   help='panoptic segments from the release\'s panoptic PNGs + JSON, or built from the instance '
                        'PNGs (default: panoptic)')
    p.add_argument('--images', choices=('copy', 'link'), default='link',
                   help='symlink the images into OUT (default) or copy them')
    p.add_argument('--workers', type=int, default=0, help='processes encoding images (default 0: this one)')
    args = p.parse_args()
    for split in args.splits:
        result = convert_split(args.root, args.out, split, version=args.version, source=args.source,
                               images=args.images, workers=args.workers)
        for path in result['written']:
            print(f'wrote {path}')
        print(f'{split}: ' + ', '.join(f'{k} {v}' for k, v in result['stats'].items()
                                        if k not in ('pixels', 'void_pixels')))
    return 0


if __name__ == '__main__':
    run(main)
