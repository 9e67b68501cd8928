"""Pictures and a table from a trained m2f_mm run: loss / PQ curves, prediction overlays, results.

    python tools/demo/demo_report.py CONFIG CHECKPOINT --train-dir WORK_DIR --runs-json RUNS.json --out DIR
        [--num-images 4] [--cfg-options K=V ...]

RUNS.json maps a run name to its test metrics (tools/demo/run_demo.py writes it). Writes
``DIR/curves.png`` (training loss and validation PQ against iterations), ``DIR/overlays.png``
(per val image, under column titles: image | ground truth | panoptic | instance | semantic
predictions) and ``DIR/results.md`` (the metrics table).
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402  (must come first: checks mmcv, registers m2f_mm)

import numpy as np  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from m2f_mm.visualization.curves import plot_curves, read_scalars  # noqa: E402
from m2f_mm.visualization.overlay import (colorize_instances, colorize_panoptic, stack_rows,  # noqa: E402
                                          title_strip, upscale)

# Shape legend: H x W image; N instances; C classes.
TABLE_KEYS = [('PQ', 'coco_panoptic/PQ'), ('SQ', 'coco_panoptic/SQ'), ('RQ', 'coco_panoptic/RQ'),
              ('PQ things', 'coco_panoptic/PQ_th'), ('PQ stuff', 'coco_panoptic/PQ_st'),
              ('mask AP', 'coco/segm_mAP'), ('mask AP50', 'coco/segm_mAP_50'), ('mIoU', 'sem_seg/mIoU'),
              ('pixel acc', 'sem_seg/aAcc')]


def draw_overlays(config: str, checkpoint: str, out_file: str, num_images: int = 4, score_thr: float = 0.5,
                  cfg_options: dict = None) -> None:
    import torch
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from PIL import Image

    from m2f_mm.checkpoints import safe_local_loading

    from m2f_mm.config import load_resolved
    cfg = load_resolved(config, cfg_options, purpose='test')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = MODELS.build(cfg.model)
    from mmengine.runner import load_checkpoint
    with safe_local_loading():  # the runner's checkpoints hold mmengine log buffers
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    model.eval()
    palette = np.array(dataset.metainfo['palette'], np.float32)
    num_classes = len(dataset.metainfo['classes'])
    rows = []
    for index in range(min(num_images, len(dataset))):
        with torch.no_grad():
            sample = model.test_step(pseudo_collate([dataset[index]]))[0]
        image = np.array(Image.open(sample.img_path).convert('RGB'))
        gt_sem = sample.gt_sem_seg.sem_seg[0].numpy().astype(np.int64)
        gt_pan = np.where(gt_sem == 255, num_classes, gt_sem)
        gt_masks = sample.gt_instances.masks.to_ndarray().astype(bool)
        for k, mask in enumerate(gt_masks):
            gt_pan[mask] = sample.gt_instances.labels[k].item() + (k + 1) * INSTANCE_OFFSET
        pred_pan = sample.pred_panoptic_seg.sem_seg[0].numpy().astype(np.int64)
        inst = sample.pred_instances
        keep = (inst.scores > score_thr).numpy()
        order = np.argsort(inst.scores.numpy()[keep])
        pred_sem = sample.pred_sem_seg.sem_seg[0].numpy().astype(np.int64)
        panels = [image, colorize_panoptic(gt_pan, palette, num_classes, INSTANCE_OFFSET),
                  colorize_panoptic(pred_pan, palette, num_classes, INSTANCE_OFFSET),
                  colorize_instances(image, inst.masks.numpy()[keep][order], inst.labels.numpy()[keep][order],
                                     palette),
                  colorize_panoptic(pred_sem, palette, num_classes, INSTANCE_OFFSET)]
        rows.append(panels)
    # enlarge small images (nearest neighbour) to >= 200 px wide panels, so the titles fit above them
    rows = [[upscale(p, 200) for p in panels] for panels in rows]
    gap = np.full((rows[0][0].shape[0], 4, 3), 255, np.uint8)
    grid = stack_rows([np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
                       for panels in rows])
    titles = ['image', 'ground truth', 'panoptic', f'instance (score > {score_thr:g})', 'semantic']
    header = title_strip(titles, [p.shape[1] for p in rows[0]], int(np.clip(grid.shape[1] // 45, 11, 24)))
    header = np.pad(header, ((0, 0), (0, grid.shape[1] - header.shape[1]), (0, 0)), constant_values=255)
    Image.fromarray(np.concatenate([header, grid], axis=0)).save(out_file)


def results_table(runs: Dict[str, Dict[str, float]]) -> str:
    """runs: name -> metrics dict (keys as the evaluators print them) -> a markdown table."""
    names = list(runs)
    lines = ['| metric | ' + ' | '.join(names) + ' |', '|---|' + '---|' * len(names)]
    for label, key in TABLE_KEYS:
        if not any(key in m for m in runs.values()):
            continue
        cells = []
        for name in names:
            value = runs[name].get(key)
            # mmdet's CocoMetric reports AP in [0, 1]; everything else is in percent.
            if value is not None and key.startswith('coco/'):
                value *= 100
            cells.append('-' if value is None else f'{value:.1f}')
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    if any('train_minutes' in m for m in runs.values()):
        lines.append('| training time (min, 2 CPU cores) | ' + ' | '.join(
            f"{runs[n]['train_minutes']:.1f}" if 'train_minutes' in runs[n] else '-' for n in names) + ' |')
    return '\n'.join(lines) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint whose predictions are drawn')
    parser.add_argument('--train-dir', required=True, help='the training work dir (for the curves)')
    parser.add_argument('--runs-json', required=True,
                        help='JSON {run name: test metrics} (from tools/demo/run_demo.py)')
    parser.add_argument('--out', required=True, help='output folder for curves.png, overlays.png, results.md')
    parser.add_argument('--num-images', type=int, default=4, help='val images drawn in overlays.png')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides (e.g. data_root=...), as for tools/test.py')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    plot_curves(read_scalars(args.train_dir), osp.join(args.out, 'curves.png'), keys=('loss', ),
                metric_keys=('coco_panoptic/PQ', ))
    draw_overlays(args.config, args.checkpoint, osp.join(args.out, 'overlays.png'), args.num_images,
                  cfg_options=args.cfg_options)
    with open(args.runs_json) as f:
        runs = json.load(f)
    table = results_table(runs)
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(table)
    print(table)
    print(f'wrote {args.out}/curves.png, {args.out}/overlays.png, {args.out}/results.md')


if __name__ == '__main__':
    _env_guard.run_tool(main)
