"""The head's two orders of mask arithmetic side by side, in one process, alternating (A/B):

    python benchmarks/mask_order.py [--config CONFIG] [--size S] [--rounds 5] [--threads 1] [--phases train,infer]

Training step (forward + loss + backward): ``M2FHead.train_masks_of`` 'every_set' (every set's dense [B, Q, h, w]
logits, as mmdet) against 'factors' (the criterion computes the logits it uses from their factors). Inference:
the head with ``masks_of='every_set'`` against ``'last_set'`` (stride-4 masks of the final set only). Random weights
and inputs, synthetic GT (6 rectangles per image). Prints each round and the medians (the first round dropped as
warm-up) and their ratio. Default: the COCO R50 panoptic config at 384 px, batch 2 (the synthetic config: 192 px,
batch 8).

Measured on the 2-core CPU machine, one thread, two training runs sharing it (so only the ratios mean anything),
R50 panoptic, batch 2 (factors / every_set, medians after the first round):

- 384 px (matching through the dense logits: 12544 points > 9216 pixels): training 11.6 against 11.8 s (0.985x),
  inference head 2.63 against 2.85 s (0.92x);
- ``--size 512`` (matching through the points: 16384 pixels): training 21.4 against 20.8 s (1.03x, within the
  rounds' spread);
- ``--size 1024`` (65536 pixels): training 91.6 against 92.5 s (0.99x).
"""
import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/m2f_r50_8xb2-lsj-50e_coco-panoptic.py')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--size', type=int, help='square input side (default: 384 for COCO configs, else 192); '
                        'above 448 px the stride-4 map has more pixels than the 12544 loss points, so the '
                        'factored order matches through the points')
    parser.add_argument('--phases', default='train,infer', help='train, infer or both (comma-separated)')
    args = parser.parse_args()

    import numpy as np
    import torch
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.config import Config
    from mmengine.structures import InstanceData, PixelData

    import m2f_mm  # noqa: F401  registers the model
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    coco = 'coco' in args.config
    things, stuff = (80, 53) if coco else (4, 3)
    size, batch = (384, 2) if coco else (192, 8)
    size = args.size or size
    for key in ('panoptic_head', 'panoptic_fusion_head'):
        cfg.model[key].update(num_things_classes=things, num_stuff_classes=stuff)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    rng = np.random.default_rng(0)

    def sample() -> DetDataSample:
        meta = dict(img_shape=(size, size), ori_shape=(size, size), batch_input_shape=(size, size),
                    pad_shape=(size, size))
        masks = np.zeros((6, size, size), np.uint8)
        for i in range(6):
            y, x = rng.integers(0, size - 60, 2)
            masks[i, y:y + 60, x:x + 50] = 1
        return DetDataSample(metainfo=meta, gt_instances=InstanceData(
            labels=torch.tensor(rng.integers(0, things, 6)), masks=BitmapMasks(masks, size, size),
            bboxes=torch.zeros(6, 4)), gt_sem_seg=PixelData(sem_seg=torch.full((1, size, size), things)))

    samples = [sample() for _ in range(batch)]
    images = torch.randn(batch, 3, size, size)
    head = model.panoptic_head

    def train_step(order: str) -> None:
        head.train_masks_of = order
        model.train()
        losses = model.loss(images, samples)
        sum(losses.values()).backward()
        model.zero_grad()

    def head_inference(order: str) -> None:
        model.eval()
        with torch.no_grad():
            head(feats, masks_of=order)

    with torch.no_grad():
        model.eval()
        feats = model.extract_feat(images)
    phases = args.phases.split(',')
    for name, step, orders in (('training step', train_step, ('every_set', 'factors')),
                               ('inference, head', head_inference, ('every_set', 'last_set'))):
        if ('train' if step is train_step else 'infer') not in phases:
            continue
        times = {order: [] for order in orders}
        for r in range(args.rounds):
            for order in orders:
                torch.manual_seed(r)
                start = time.perf_counter()
                step(order)
                times[order].append(time.perf_counter() - start)
        medians = {order: statistics.median(values[1:] or values) for order, values in times.items()}
        for order, values in times.items():
            print(f"{name}, {order}: median {medians[order]:.3f} s  ({', '.join(f'{v:.2f}' for v in values)})")
        print(f'{name}: {orders[1]} / {orders[0]} = {medians[orders[1]] / medians[orders[0]]:.3f}')


if __name__ == '__main__':
    main()
