"""Peak memory of fusion predict for one 1333x800 image, 200 queries, 133 classes (80 things + 53 stuff):
m2f_mm's chunked M2FFusionHead vs mmdet's approach (upsample all queries to the padded input, then
MaskFormerFusionHead crops and resizes every query to full resolution).

    python benchmarks/inference_memory.py [--chunk 16] [--device cpu|cuda]

Method: each variant runs in a fresh subprocess. CPU: peak resident memory (``VmHWM``, i.e. ru_maxrss, reset
through /proc/self/clear_refs just before predict) minus the resident memory at that moment (inputs built,
imports done, one warm-up on a tiny input). CUDA:
``torch.cuda.max_memory_allocated`` during predict minus memory allocated before it. Panoptic + instance
are on for both (mmdet cannot do semantic); 'm2f_mm +semantic' adds the semantic output (C x H x W scores).
"""
import argparse
import json
import subprocess
import sys

Q, THINGS, STUFF = 200, 80, 53
ORI, PAD = (800, 1333), (800, 1344)

CHILD = r'''
import json, sys, time
import torch, torch.nn.functional as F
torch.set_num_threads(1)
variant, device, chunk = {variant!r}, {device!r}, {chunk}
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
from mmdet.structures import DetDataSample
from m2f_mm.models.fusion import M2FFusionHead
g = torch.Generator().manual_seed(0)
Q, C = {q}, {things} + {stuff}
cls = torch.randn(1, Q, C + 1, generator=g)
cls[0, :40, :C] += 12 * (torch.arange(C) == torch.randint(0, C, (40, 1), generator=g))  # 40 confident queries
h, w = {pad}[0] // 4, {pad}[1] // 4
masks = torch.randn(1, Q, h, w, generator=g) * 2 - 8      # blob-like masks: a random box of +16 per query
y0, x0 = torch.randint(0, h - h // 4, (Q, ), generator=g), torch.randint(0, w - w // 4, (Q, ), generator=g)
for q in range(Q):
    masks[0, q, y0[q]:y0[q] + h // 4, x0[q]:x0[q] + w // 4] += 16
cls, masks = cls.to(device), masks.to(device)
meta = dict(batch_input_shape={pad}, img_shape={ori}, ori_shape={ori})
cfg = dict(panoptic_on=True, instance_on=True, semantic_on=variant.endswith('semantic'), max_per_image=100,
           filter_low_score=True, query_chunk_size=chunk)

def predict(cls, masks, meta):
    if variant == 'mmdet':
        head = MaskFormerFusionHead({things}, {stuff}, test_cfg=cfg)
        up = F.interpolate(masks, size=meta['batch_input_shape'], mode='bilinear', align_corners=False)
        return head.predict(cls, up, [DetDataSample(metainfo=meta)], rescale=True)
    return M2FFusionHead({things}, {stuff}, test_cfg=cfg).predict(cls, masks, [meta], rescale=True)

predict(cls[:, :, :], masks[:, :, :8, :8], dict(batch_input_shape=(32, 32), img_shape=(30, 30), ori_shape=(40, 40)))
if device == 'cuda':
    torch.cuda.synchronize(); base = torch.cuda.memory_allocated(); torch.cuda.reset_peak_memory_stats()
else:
    def status(key):
        with open('/proc/self/status') as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ':'))
    try:  # reset the peak (VmHWM) to the current RSS
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass
    base = status('VmRSS')
t = time.perf_counter()
out = predict(cls, masks, meta)
if device == 'cuda':
    torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated() - base
else:
    peak = status('VmHWM') - base
dt = time.perf_counter() - t
pan = out[0]['pan_results'].sem_seg
print(json.dumps(dict(peak=peak, seconds=dt, segments=len(pan.unique()), instances=len(out[0]['ins_results']))))
'''


def run(variant: str, device: str, chunk: int, repo: str) -> dict:
    code = CHILD.format(repo=repo, variant=variant, device=device, chunk=chunk, q=Q, things=THINGS, stuff=STUFF,
                        pad=PAD, ori=ORI)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f'{variant} failed:\n{proc.stderr[-2000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import os.path as osp
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--chunk', type=int, default=16, help='m2f_mm query_chunk_size')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    args = parser.parse_args()
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    method = 'cuda max_memory_allocated' if args.device == 'cuda' else 'fresh subprocess, VmHWM (reset) - VmRSS before'
    print(f'image {ORI[1]}x{ORI[0]} (padded {PAD[1]}x{PAD[0]}), {Q} queries, {THINGS + STUFF} classes, '
          f'device {args.device}, 1 thread; peak memory: {method}')
    results = {}
    for variant in ('mmdet', 'm2f_mm', 'm2f_mm +semantic'):
        r = results[variant] = run(variant, args.device, args.chunk, repo)
        print(f"{variant:18s} peak {r['peak'] / 2 ** 20:8.1f} MiB   {r['seconds']:6.2f} s   "
              f"{r['segments']} panoptic ids, {r['instances']} instances")
    ratio = results['mmdet']['peak'] / max(results['m2f_mm']['peak'], 1)
    print(f'mmdet / m2f_mm peak memory (panoptic + instance): {ratio:.1f}x')


if __name__ == '__main__':
    main()
