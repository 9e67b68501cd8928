"""MaskFormer's full-mask focal loss: the fused ``sigmoid_focal_loss`` against the textbook expression.

Shape legend: M matched masks of a batch, P = S x S pixels per mask (MaskFormer's loss covers every
pixel of every matched mask).

For each M, both variants get the same logits ``[M, P]`` and binary targets and run forward + backward
``--runs`` times (after one warm-up); printed: the median seconds, and the bytes autograd keeps for
backward (counted through ``torch.autograd.graph.saved_tensors_hooks``, the inputs included), with the
ratios fused / textbook. The textbook variant is the formula MaskFormer and mmdet's
``py_sigmoid_focal_loss`` write, differentiated by autograd.

    python benchmarks/focal_loss.py                       # M = 50 100 200, 192 px, 1 thread
    python benchmarks/focal_loss.py --size 384 --masks 100 --threads 2
"""
import argparse
import statistics
import time

import torch

from m2f_mm.models.criterion import _sigmoid_focal_loss_sum_unfused, sigmoid_focal_loss


def textbook(logits, targets, num_masks):
    return _sigmoid_focal_loss_sum_unfused(logits, targets, 0.25, 2.0) / (num_masks * logits.shape[1])


def measure(fn, logits, targets, runs):
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t
    times = []
    for i in range(runs + 1):
        x = logits.clone().requires_grad_()
        saved.clear()
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = fn(x, targets, 10.0)
        loss.backward()
        if i:  # the first run warms up
            times.append(time.perf_counter() - start)
    return statistics.median(times), sum(saved), loss.item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--masks', type=int, nargs='+', default=[50, 100, 200], help='M, matched masks')
    parser.add_argument('--size', type=int, default=192, help='S: every mask is S x S pixels')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pixels = args.size * args.size
    print(f'focal loss forward + backward, P = {args.size}x{args.size}, {args.threads} thread(s), '
          f'median of {args.runs}')
    print('| M | textbook s | fused s | ratio | textbook saved MiB | fused saved MiB | ratio | |loss difference| |')
    print('|---|---|---|---|---|---|---|---|')
    gen = torch.Generator().manual_seed(0)
    for masks in args.masks:
        logits = torch.randn(masks, pixels, generator=gen) * 4
        targets = (torch.rand(masks, pixels, generator=gen) > 0.7).float()
        t_s, t_b, t_loss = measure(textbook, logits, targets, args.runs)
        f_s, f_b, f_loss = measure(sigmoid_focal_loss, logits, targets, args.runs)
        print(f'| {masks} | {t_s:.3f} | {f_s:.3f} | {f_s / t_s:.2f} | {t_b / 2**20:.0f} | {f_b / 2**20:.0f} | '
              f'{f_b / t_b:.2f} | {abs(f_loss - t_loss):.1e} |')


if __name__ == '__main__':
    main()
