"""Peak memory of one forward + backward of Mask2Former's loss: point-sampled vs full-mask.

Both variants get the same predictions (all prediction sets, leaf tensors with gradient) and the
same ground truth; only ``M2FCriterion(full_mask=...)`` differs:

- ``points``: matching at K uniform points per image, mask losses at K importance-sampled points
  per matched pair (K = 112 * 112 = 12544), as Mask2Former trains;
- ``full``: predictions upsampled (bilinear) to the GT resolution, matching and mask losses on
  every pixel (the MaskFormer-style loss the paper compares against).

How memory is measured. Each run is a fresh subprocess (no allocator cache or high-water mark
carried over). It builds the inputs, runs one small warm-up loss (imports, lazy init), then:
- CUDA: ``torch.cuda.reset_peak_memory_stats()``; peak = ``max_memory_allocated() -
  memory_allocated()`` before the loss, i.e. the extra memory the loss and its backward need;
- CPU: torch's CPU tensors are invisible to tracemalloc, so the process's resident-set high-water
  mark is used: peak = ``ru_maxrss`` after the loss minus ``ru_maxrss`` before it (the inputs are
  already resident then, so the difference is the loss's own peak, at page granularity).
The medians over ``--runs`` runs are printed with the full / points ratio.

The paper's ~3x (18 GB -> 6 GB per image) is for a whole training step, where the backbone and
decoder activations are the same for both variants. By default this script isolates the loss, so
its ratio is larger; with ``--config`` it measures the whole step instead: that config's detector
(random weights, no download) runs forward + loss + backward on a random batch with random
rectangle GT, with ``criterion.full_mask`` the only difference between the variants.

    python benchmarks/memory_point_loss.py --device cpu --size 256 --runs 3
    python benchmarks/memory_point_loss.py --device cpu --size 512 --runs 3 \
        --config configs/m2f_r50_8xb2-lsj-50e_coco-panoptic.py          # whole training step
    python benchmarks/memory_point_loss.py --device cuda --size 1024 --runs 5
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _inputs(args, torch, device):
    gen = torch.Generator().manual_seed(0)
    size, stride = args.size, 4
    h = size // stride
    cls = [torch.randn(args.batch, args.queries, args.classes + 1, generator=gen).to(device)
           .requires_grad_() for _ in range(args.sets)]
    masks = [(torch.randn(args.batch, args.queries, h, h, generator=gen) * 2).to(device)
             .requires_grad_() for _ in range(args.sets)]
    labels, gts = [], []
    for _ in range(args.batch):  # G random rectangles per image
        lab = torch.randint(0, args.classes, (args.gts, ), generator=gen)
        gt = torch.zeros(args.gts, size, size, dtype=torch.bool)
        corners = torch.randint(0, size // 2, (args.gts, 2), generator=gen)
        extents = torch.randint(size // 16, size // 2, (args.gts, 2), generator=gen)
        for g in range(args.gts):
            (y, x), (dy, dx) = corners[g].tolist(), extents[g].tolist()
            gt[g, y:y + dy, x:x + dx] = True
        labels.append(lab.to(device))
        gts.append(gt.to(device))
    return cls, masks, labels, gts


def _model_step(args, torch, device):
    """Build ``args.config``'s detector and return a closure running one training step's loss."""
    import m2f_mm  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData, PixelData
    from m2f_mm.config import load_resolved
    cfg = load_resolved(os.path.join(ROOT, args.config) if not os.path.isabs(args.config) else args.config)
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.pop('batch_augments', None)
    cfg.model.panoptic_head.criterion.full_mask = args.variant == 'full'
    cfg.model.panoptic_head.criterion.num_points = args.num_points
    model = MODELS.build(cfg.model).to(device).train()
    num_things = cfg.model.panoptic_head.num_things_classes

    def batch(size, gts):
        cls_, masks_, labels_, gt_masks = _inputs(argparse.Namespace(**{**vars(args), 'size': size, 'gts': gts,
                                                                        'sets': 1, 'queries': 1}), torch, 'cpu')
        images, samples = [], []
        for lab, gt in zip(labels_, gt_masks):
            meta = dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0))
            sample = DetDataSample(metainfo=meta)
            lab = lab % num_things
            sample.gt_instances = InstanceData(labels=lab, masks=BitmapMasks(gt.numpy().astype('uint8'), size, size),
                                               bboxes=torch.zeros(len(lab), 4))
            sample.gt_sem_seg = PixelData(sem_seg=torch.full((1, size, size), 255, dtype=torch.uint8))
            images.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8))
            samples.append(sample)
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples), training=True)
        return data['inputs'], data['data_samples']

    def step(inputs, samples):
        losses = model.loss(inputs, samples)
        return {k: v for k, v in losses.items() if 'loss' in k}
    return batch, step


def _measure(args, torch, device, loss_fn) -> dict:
    """Peak extra memory and time of ``loss_fn()`` (-> dict of losses) plus its backward, in this process."""
    cuda = device.type == 'cuda'
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    losses = loss_fn()
    sum(losses.values()).backward()
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return dict(variant=args.variant, peak_bytes=peak, seconds=time.perf_counter() - start,
                loss=float(sum(v.detach() for v in losses.values())))


def worker(args) -> dict:
    """One measurement in this (fresh) process; returns the result as a dict."""
    import torch
    if args.config:
        return _worker_whole_step(args, torch)
    from m2f_mm.models.criterion import M2FCriterion
    torch.set_num_threads(max(1, int(os.environ.get('OMP_NUM_THREADS', '2'))))
    device = torch.device(args.device)
    criterion = M2FCriterion(num_classes=args.classes, num_points=args.num_points,
                             full_mask=args.variant == 'full')
    # warm-up on tiny inputs: imports, lazy kernels, thread pools
    tiny = argparse.Namespace(**{**vars(args), 'size': 32, 'sets': 1, 'gts': 2, 'queries': 4})
    sum(criterion(*_inputs(tiny, torch, device)).values()).backward()
    cls, masks, labels, gts = _inputs(args, torch, device)
    return _measure(args, torch, device, lambda: criterion(cls, masks, labels, gts))


def _worker_whole_step(args, torch) -> dict:
    torch.set_num_threads(max(1, int(os.environ.get('OMP_NUM_THREADS', '2'))))
    device = torch.device(args.device)
    batch, step = _model_step(args, torch, device)
    sum(step(*batch(64, 2)).values()).backward()  # warm-up: lazy init, thread pools
    inputs, samples = batch(args.size, args.gts)
    return _measure(args, torch, device, lambda: step(inputs, samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--runs', type=int, default=3, help='fresh processes per variant')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--queries', type=int, default=100)
    parser.add_argument('--classes', type=int, default=133)
    parser.add_argument('--gts', type=int, default=15, help='GT segments per image')
    parser.add_argument('--sets', type=int, default=10, help='prediction sets (9 layers + 1)')
    parser.add_argument('--size', type=int, default=256, help='GT (input) side; logits at /4')
    parser.add_argument('--num-points', type=int, default=12544)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--config', help='measure a whole training step of this config\'s detector')
    parser.add_argument('--variant', choices=['points', 'full'], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child process
        print('RESULT ' + json.dumps(worker(args)))
        return
    if args.config:
        print(f'whole training step (model forward + loss + backward) of {args.config}: queries, classes and '
              f'prediction sets from the config; batch={args.batch} gts/image={args.gts} '
              f'input={args.size}x{args.size} points={args.num_points} runs={args.runs}')
    else:
        print(f'device={args.device} batch={args.batch} queries={args.queries} classes={args.classes} '
              f'gts/image={args.gts} sets={args.sets} input={args.size}x{args.size} '
              f'logits={args.size // 4}x{args.size // 4} points={args.num_points} runs={args.runs}')
    how = ('torch.cuda.max_memory_allocated (extra over the inputs)' if 'cuda' in args.device
           else 'ru_maxrss delta in a fresh process per run (page granularity)')
    print(f'measured with: {how}')
    medians = {}
    for variant in ('points', 'full'):
        results = []
        for _ in range(args.runs):
            cmd = [sys.executable, os.path.abspath(__file__), '--variant', variant] + sys.argv[1:]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
            if proc.returncode != 0 or not line:
                sys.exit(f'{variant} run failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}')
            results.append(json.loads(line[-1][len('RESULT '):]))
        peak = statistics.median(r['peak_bytes'] for r in results) / 2**20
        secs = statistics.median(r['seconds'] for r in results)
        medians[variant] = peak
        print(f'{variant:>6}: median peak {peak:9.1f} MiB   median time {secs:7.3f} s   '
              f'loss {results[0]["loss"]:.4f}   (runs: '
              + ', '.join(f'{r["peak_bytes"] / 2**20:.1f}' for r in results) + ' MiB)')
    print(f'ratio full / points: {medians["full"] / max(medians["points"], 1e-9):.2f}x')


if __name__ == '__main__':
    main()
