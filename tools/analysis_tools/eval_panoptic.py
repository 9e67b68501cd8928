"""Evaluate saved COCO-format panoptic results (PNG + JSON) against COCO panoptic ground truth.

    python tools/analysis_tools/eval_panoptic.py --gt-json panoptic_val2017.json --gt-dir panoptic_val2017/ \
        --pred-json results.panoptic.json --pred-dir results.panoptic/ [--workers 8] [--classwise]

Same definition as panopticapi's ``pq_compute`` (m2f_mm.evaluation.pq), no panopticapi needed.
Prints the All / Things / Stuff table (percent) and exits non-zero with one message on bad input.
"""
import argparse
import json
import os.path as osp
import time

from m2f_mm.evaluation.pq import format_table, match_annotations, pq_stat_files, summarize


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt-json', required=True, help='COCO panoptic ground-truth JSON')
    parser.add_argument('--gt-dir', required=True, help='folder of the ground-truth PNGs')
    parser.add_argument('--pred-json', required=True, help='prediction JSON (annotations with segments_info)')
    parser.add_argument('--pred-dir', required=True, help='folder of the predicted PNGs')
    parser.add_argument('--workers', type=int, default=0, help='worker processes (0: this process)')
    parser.add_argument('--classwise', action='store_true', help='also print one row per category')
    parser.add_argument('--out', help='write the summary (fractions) to this JSON file')
    return parser.parse_args(argv)


SEGMENT_KEYS = ('image_id', 'file_name', 'segments_info')


def read_coco_json(path: str, flag: str, keys) -> dict:
    """A COCO panoptic JSON object with ``keys``, its annotations well-formed, or SystemExit with one line."""
    expected = ('a COCO panoptic object {"annotations": [{"image_id": ..., "file_name": ..., "segments_info": '
                '[...]}, ...]' + (', "images": [...], "categories": [...]' if 'images' in keys else '') + '}')
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise SystemExit(f'error: {flag} {path}: cannot read it as JSON ({err})')
    if not isinstance(data, dict):
        raise SystemExit(f'error: {flag} {path} holds a {type(data).__name__}; expected {expected}')
    missing = [k for k in keys if not isinstance(data.get(k), list)]
    if missing:
        raise SystemExit(f'error: {flag} {path} has no list {missing[0]!r}; expected {expected}')
    for i, ann in enumerate(data['annotations']):
        if not isinstance(ann, dict) or any(k not in ann for k in SEGMENT_KEYS):
            raise SystemExit(f'error: {flag} {path}: annotation {i} is not an object with {", ".join(SEGMENT_KEYS)}')
    return data


def main(argv=None) -> dict:
    args = parse_args(argv)
    for folder in (args.gt_dir, args.pred_dir):
        if not osp.isdir(folder):
            raise SystemExit(f'error: folder {folder} does not exist')
    gt_json = read_coco_json(args.gt_json, '--gt-json', ('images', 'annotations', 'categories'))
    pred_json = read_coco_json(args.pred_json, '--pred-json', ('annotations', ))
    categories = {c['id']: c for c in gt_json['categories']}
    start = time.time()
    try:
        pairs = match_annotations(gt_json, pred_json)
        stat = pq_stat_files(pairs, args.gt_dir, args.pred_dir, categories, workers=args.workers)
    except (KeyError, ValueError) as err:
        raise SystemExit(f'error: {err.args[0] if err.args else err}')
    summary = summarize(stat, categories)
    names = {c: info.get('name', c) for c, info in categories.items()}
    print(format_table(summary, names if args.classwise else None))
    print(f'{len(pairs)} images in {time.time() - start:.2f} s')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({k: v for k, v in summary.items() if k != 'per_class'} | {
                'per_class': {str(k): v for k, v in summary['per_class'].items()}}, f, indent=1)
    return summary


if __name__ == '__main__':
    from m2f_mm.errors import run_main
    run_main(main)
