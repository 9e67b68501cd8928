"""Shared by the converters of this folder: the common options, the run wrapper, the summary."""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402  (must come first: checks the install, registers m2f_mm)

LAYOUT = '''Output (OUT, split S):
  OUT/S/<images>                                 copied (or linked with --images link)
  OUT/annotations/panoptic_S.json + panoptic_S/  COCO panoptic (PNG id = R + 256 G + 256^2 B, 0 = VOID)
  OUT/annotations/instances_S.json               COCO instances of the thing segments (RLE)
  OUT/annotations/semantic_S/<stem>.png          mmseg label PNGs (index into classes.json, 255 = ignore)
  OUT/classes.json                               class names, palette, thing / stuff split
Run once per split (e.g. --split train, then --split val) into the same OUT. Configs: point
data_root at OUT (docs/model_zoo.md, "Your own data").'''


def parser(doc: str) -> argparse.ArgumentParser:
    """An ArgumentParser showing the module docstring and the output layout."""
    return argparse.ArgumentParser(description=doc.split('\n\n')[0], epilog=doc.split('\n\n', 1)[1] + '\n\n' + LAYOUT,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_output_options(p: argparse.ArgumentParser, default_split: str = None) -> None:
    """--out, --split and --images."""
    p.add_argument('--out', required=True, help='the dataset root to write (created; reruns overwrite the split)')
    p.add_argument('--split', required=default_split is None, default=default_split,
                   help='split name, the folder under OUT: train, val, ...')
    p.add_argument('--images', choices=('copy', 'link'), default='copy',
                   help='copy the images into OUT/SPLIT, or symlink them (default: copy)')


def run(main) -> None:
    """Run ``main()``; a ConversionError (bad input, an M2FError) ends with its one line and status 1."""
    _env_guard.run_tool(main)


def report(result: dict) -> int:
    """Print what was written and the split's counts; returns 0."""
    for path in result['written']:
        print(f'wrote {path}')
    print('counts: ' + ', '.join(f'{k} {v}' for k, v in result['stats'].items() if k not in ('pixels', 'void_pixels')))
    return 0
