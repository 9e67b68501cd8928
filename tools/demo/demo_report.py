"""Pictures and a table from a trained m2f_mm run: loss / PQ curves, prediction overlays, results.

    python tools/demo_report.py CONFIG CHECKPOINT --train-dir WORK_DIR --metrics METRICS.json --out DIR

Writes ``DIR/curves.png`` (training loss and validation PQ against iterations), ``DIR/overlays.png``
(per val image: image | ground truth | panoptic | instance | semantic predictions) and
``DIR/results.md`` (the metrics table).
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import _env_guard  # noqa: E402,F401  (must come first: checks mmcv, registers m2f_mm)

import numpy as np  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

# Shape legend: H x W image; N instances; C classes.
TABLE_KEYS = [('PQ', 'coco_panoptic/PQ'), ('SQ', 'coco_panoptic/SQ'), ('RQ', 'coco_panoptic/RQ'),
              ('PQ things', 'coco_panoptic/PQ_th'), ('PQ stuff', 'coco_panoptic/PQ_st'),
              ('mask AP', 'coco/segm_mAP'), ('mask AP50', 'coco/segm_mAP_50'), ('mIoU', 'sem_seg/mIoU'),
              ('pixel acc', 'sem_seg/aAcc')]


def read_scalars(train_dir: str) -> List[dict]:
    """All records of mmengine's ``vis_data/scalars.json`` files under a work dir (oldest run first)."""
    records = []
    for path in sorted(glob.glob(osp.join(train_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def plot_curves(records: Sequence[dict], out_file: str, title: str = '') -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    train, val, last_iter = [], [], 0
    for r in records:  # a val record's 'step' counts validations, so place it at the last train iteration
        if 'loss' in r and 'iter' in r:
            last_iter = r['iter']
            train.append((r['iter'], r['loss']))
        elif 'coco_panoptic/PQ' in r:
            val.append((last_iter, r['coco_panoptic/PQ']))
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), color='tab:blue', label='training loss (all 3 terms x all sets)')
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss', color='tab:blue')
    ax.set_yscale('log')
    if val:
        ax2 = ax.twinx()
        ax2.plot(*zip(*val), 'o-', color='tab:red', label='val PQ')
        ax2.set_ylabel('val PQ', color='tab:red')
        ax2.set_ylim(0, 100)
    ax.set_title(title or 'm2f_mm training')
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)


def colorize_panoptic(pan: np.ndarray, palette: np.ndarray, num_classes: int, offset: int) -> np.ndarray:
    """pan: [H, W] label + instance_id * offset (VOID = num_classes) -> RGB [H, W, 3] with white outlines."""
    labels, ids = pan % offset, pan // offset
    rgb = np.zeros(pan.shape + (3, ), np.float32)
    valid = labels < num_classes
    rgb[valid] = palette[labels[valid]]
    # Instances of one class differ in brightness so that touching ones stay distinguishable.
    rgb *= (1.0 - 0.18 * (ids % 4))[..., None]
    edge = np.zeros(pan.shape, bool)
    edge[:-1] |= pan[:-1] != pan[1:]
    edge[:, :-1] |= pan[:, :-1] != pan[:, 1:]
    rgb[edge] = 255
    return rgb.clip(0, 255).astype(np.uint8)


def colorize_instances(image: np.ndarray, masks: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """image [H, W, 3], masks [N, H, W] (highest score last) -> image with the masks blended in."""
    out = image.astype(np.float32) * 0.5
    for mask, label in zip(masks, labels):
        out[mask] = 0.35 * out[mask] + 0.65 * palette[label]
    return out.clip(0, 255).astype(np.uint8)


def draw_overlays(config: str, checkpoint: str, out_file: str, num_images: int = 4, score_thr: float = 0.5,
                  cfg_options: dict = None) -> None:
    import torch
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from PIL import Image

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
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
        gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    grid = np.concatenate(rows, axis=0)
    scale = max(1, 640 // grid.shape[1] + 1)
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(out_file)


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
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--train-dir', required=True, help='the training work dir (for the curves)')
    parser.add_argument('--runs-json', required=True, help='JSON {run name: test metrics} (from tools/run_demo.py)')
    parser.add_argument('--out', required=True)
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    plot_curves(read_scalars(args.train_dir), osp.join(args.out, 'curves.png'))
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
    main()
