"""Speed and memory of m2f_mm against OpenMMLab's in-tree Mask2Former, side by side; and an fps mode.

    python benchmarks/benchmark.py                 # compare: panoptic (mmdet) + semantic (mmseg)
    python benchmarks/benchmark.py compare --model maskformer   # MaskFormer against mmdet's / mmseg's
    python benchmarks/benchmark.py compare --task panoptic --rounds 3 --steps 3
    python benchmarks/benchmark.py compare --task panoptic --size 1024 --batch 1 --phases train --num-cp 6
    python benchmarks/benchmark.py fps configs/m2f_r50_8xb2-lsj-50e_coco-panoptic.py --size 384
    python benchmarks/benchmark.py profile --side ref --task panoptic [--top 25]   # where the time goes

compare: every measurement runs in a fresh process (no allocator cache or high-water mark carried
over); sides alternate (ref, ours, then ours, ref in the next round) so a drifting machine speed
hits both. Both sides load the same weights (ours through m2f_mm's mmdet converter) and get the
same seeded inputs. Per process: ``--warmup`` steps, then the peak is reset (CPU: VmHWM through
/proc/self/clear_refs; GPU: torch.cuda.reset_peak_memory_stats) and ``--steps`` steps are timed.
A training step is forward + loss + backward + AdamW step; inference is ``model.predict`` (forward
+ panoptic/instance fusion, or semantic scores). Printed: the median over processes of each
process's median step, the peak memory (CPU: peak resident set VmHWM of the whole process; GPU:
max_memory_allocated), the part of it above what the process held once the model, its weights and
the inputs were loaded (torch, the libraries and the weights are the same on both sides: on CPU
about 660 MiB of an R50 process before any step), matching time per training step, and the ratios
ours / reference.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

TASK_DEFAULTS = dict(panoptic=dict(size=384, classes=133, stuff_classes=53),
                     semantic=dict(size=512, classes=150, stuff_classes=150))
REF_NAME = dict(panoptic='mmdet 3.3', semantic='mmseg 1.2.2')


# ----------------------------------------------------------------------------- worker (child)
def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ':'))


def _reset_peak(device: str) -> None:
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # VmHWM := VmRSS
    except OSError:
        pass


def _peak_mib(device: str) -> float:
    import torch
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return _status_kib('VmHWM') / 1024


def _autocast(spec: dict):
    import contextlib

    import torch
    if spec['amp'] == 'none':
        return contextlib.nullcontext()
    return torch.autocast(device_type=spec['device'].split(':')[0], dtype=getattr(torch, spec['amp']))


def run_worker(spec: dict) -> dict:
    """One side, one phase, in this process: build, warm up, reset the peak, time the steps."""
    import torch
    from _bench_models import build_model, load_weights, make_batch, matching_timer, module_timers
    torch.set_num_threads(spec['threads'])
    side, device, train = spec['side'], spec['device'], spec['phase'] == 'train'
    model = build_model(spec, side)
    load_weights(model, spec, side, spec['weights'])
    model.to(device).train(train)
    data = model.data_preprocessor(make_batch(spec), training=train)
    inputs, samples = data['inputs'], data['data_samples']
    # what both sides hold before any step: torch and the libraries, the weights, the inputs
    loaded = _status_kib('VmRSS') / 1024 if not device.startswith('cuda') else \
        torch.cuda.memory_allocated() / 2 ** 20
    match_seconds, parts = [], {}
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)

    def add(name: str, seconds: float) -> None:
        parts[name] = parts.get(name, 0.0) + seconds
    if spec.get('breakdown'):
        module_timers(model, side, spec, add)
    if train:
        matching_timer(model, side, spec, match_seconds.append)
        params = [p for p in model.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
        scaler = torch.amp.GradScaler(device.split(':')[0], enabled=spec['amp'] == 'float16')

        def step():
            start = time.perf_counter()
            with _autocast(spec):
                losses = model.loss(inputs, samples)
            loss, _ = model.parse_losses(losses)
            sync()
            add('forward + loss', time.perf_counter() - start)
            start = time.perf_counter()
            scaler.scale(loss).backward()
            sync()
            add('backward', time.perf_counter() - start)
            start = time.perf_counter()
            scaler.step(optim)
            scaler.update()
            optim.zero_grad(set_to_none=True)
            sync()
            add('optimizer', time.perf_counter() - start)
    else:
        def step():
            with torch.no_grad(), _autocast(spec):
                model.predict(inputs, samples)
    torch.manual_seed(spec['seed'])
    for _ in range(spec['warmup']):
        step()
    sync()
    match_seconds.clear()
    _reset_peak(device)
    base = _status_kib('VmRSS') / 1024 if not device.startswith('cuda') else \
        torch.cuda.memory_allocated() / 2 ** 20
    times, part_steps = [], []
    for _ in range(spec['steps']):
        parts.clear()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
        part_steps.append(dict(parts))
    breakdown = {key: statistics.median(p.get(key, 0.0) for p in part_steps) for key in part_steps[0]}
    return dict(seconds=statistics.median(times), all_seconds=times, peak_mib=_peak_mib(device),
                base_mib=base, loaded_mib=loaded, above_loaded_mib=_peak_mib(device) - loaded,
                match_seconds=sum(match_seconds) / spec['steps'] if train else None,
                breakdown=breakdown)


# ----------------------------------------------------------------------------- compare (parent)
def _child(spec: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(spec['threads']), MKL_NUM_THREADS=str(spec['threads']))
    proc = subprocess.run([sys.executable, osp.abspath(__file__), '_worker', json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{spec['side']} {spec['phase']} ({spec['task']}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt_ratio(ours, ref):
    if ours is None or ref is None or ref == 0:
        return '-'
    return f'{ours / ref:.2f}'


def compare(args) -> None:
    from _bench_models import save_reference_weights
    phases = [p for p in ('train', 'infer') if p in args.phases.split(',')]
    for threads, task in [(t, task) for t in args.threads for task in args.task]:
        base = dict(task=task, model=args.model, batch=args.batch, queries=args.queries, device=args.device,
                    amp=args.amp, threads=threads, steps=args.steps, warmup=args.warmup, seed=0, num_cp=args.num_cp,
                    things=args.things, stuff=args.stuff, **TASK_DEFAULTS[task])
        for key in ('size', 'classes', 'stuff_classes'):
            if getattr(args, key) is not None and (key != 'stuff_classes' or task == 'panoptic'):
                base[key] = getattr(args, key)
        if task == 'semantic':
            base['stuff_classes'] = base['classes']
        if task == 'panoptic' and not 0 < base['stuff_classes'] < base['classes']:
            raise SystemExit(f"--stuff-classes must be in (0, --classes={base['classes']})")
        started = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            base['weights'] = osp.join(tmp, 'weights.pth')
            save_reference_weights(base, base['weights'])
            results = {(side, phase): [] for side in ('ref', 'ours') for phase in phases}
            for r in range(args.rounds):
                for phase in phases:
                    for side in (('ref', 'ours') if r % 2 == 0 else ('ours', 'ref')):
                        res = _child(dict(base, side=side, phase=phase))
                        results[side, phase].append(res)
                        print(f"  [{task} round {r + 1}/{args.rounds}] {side:4s} {phase:5s} "
                              f"{res['seconds']:7.3f} s  peak {res['peak_mib']:7.0f} MiB", flush=True)
        _report(task, base, results, phases, time.time() - started, args)


def _report(task, spec, results, phases, elapsed, args) -> None:
    def med(side, phase, key):
        values = [r[key] for r in results.get((side, phase), []) if r[key] is not None]
        return statistics.median(values) if values else None

    mem = 'peak RSS (VmHWM)' if not spec['device'].startswith('cuda') else 'max_memory_allocated'
    checkpointing = f", encoder checkpointing {spec['num_cp']} layers" if spec.get('num_cp') else ''
    model = 'MaskFormer' if spec.get('model') == 'maskformer' else 'Mask2Former'
    print(f"\n{model} {task}: R50, {spec['size']}x{spec['size']}, batch {spec['batch']}, {spec['queries']} queries, "
          f"{spec['classes']} classes, {spec['things']}+{spec['stuff']} GT/image, device {spec['device']}, "
          f"amp {spec['amp']}, {spec['threads']} threads{checkpointing}; medians of {args.rounds} processes x "
          f"{args.steps} steps (after {args.warmup} warm-up); {elapsed / 60:.1f} min")
    ref_name = REF_NAME[task]
    print(f"| | {ref_name} | m2f_mm | ratio |\n|---|---|---|---|")
    rows = []
    if 'train' in phases:
        rows += [('training step (s)', 'train', 'seconds', '{:.2f}'),
                 (f'{mem}, training (MiB)', 'train', 'peak_mib', '{:.0f}'),
                 ('  of which above the loaded model and inputs (MiB)', 'train', 'above_loaded_mib', '{:.0f}'),
                 ('matching per step (s)', 'train', 'match_seconds', '{:.3f}')]
    if 'infer' in phases:
        rows += [('inference (s)', 'infer', 'seconds', '{:.2f}'),
                 (f'{mem}, inference (MiB)', 'infer', 'peak_mib', '{:.0f}'),
                 ('  of which above the loaded model and inputs (MiB)', 'infer', 'above_loaded_mib', '{:.0f}')]
    for label, phase, key, fmt in rows:
        ref, ours = med('ref', phase, key), med('ours', phase, key)
        cell = (lambda v: fmt.format(v) if v is not None else '-')
        print(f'| {label} | {cell(ref)} | {cell(ours)} | {_fmt_ratio(ours, ref)} |')
    print(flush=True)


# ----------------------------------------------------------------------------- fps / profile
def fps(args) -> None:
    """Inference throughput of one model built from a config (ours, mmdet's or mmseg's)."""
    import torch
    from mmengine.registry import DefaultScope
    torch.set_num_threads(args.threads)
    from m2f_mm.config import load_resolved
    cfg = load_resolved(args.config)  # class counts from the config's data (or its dataset's METAINFO)
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmseg':
        from mmseg.registry import MODELS
        from mmseg.structures import SegDataSample as Sample
        from mmseg.utils import register_all_modules
    else:
        from mmdet.registry import MODELS
        from mmdet.structures import DetDataSample as Sample
        from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import m2f_mm  # noqa: F401
    cfg.model.backbone.init_cfg = None
    if 'norm_cfg' in cfg.model.backbone and cfg.model.backbone.norm_cfg.get('type') == 'SyncBN':
        cfg.model.backbone.norm_cfg.type = 'BN'
    cfg.model.data_preprocessor.pop('batch_augments', None)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(args.device).eval()
    gen = torch.Generator().manual_seed(0)
    size = args.size
    meta = dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size), scale_factor=(1.0, 1.0))
    batch = dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen)
                         for _ in range(args.batch)], data_samples=[Sample(metainfo=meta) for _ in range(args.batch)])
    data = model.data_preprocessor(batch, training=False)
    spec = dict(amp=args.amp, device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    times = []
    for i in range(args.warmup + args.iters):
        start = time.perf_counter()
        with torch.no_grad(), _autocast(spec):
            model.predict(data['inputs'], data['data_samples'])
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    latency = statistics.median(times)
    print(f'{osp.basename(args.config)}: {size}x{size}, batch {args.batch}, device {args.device}, amp {args.amp}, '
          f'{args.threads} threads: median {latency:.3f} s per batch over {args.iters} batches -> '
          f'{args.batch / latency:.2f} img/s')


def profile(args) -> None:
    """Module timers of one side's training step (or inference) and, with --top, torch.profiler's
    top operators, in this process."""
    import torch
    from _bench_models import save_reference_weights
    task = args.task[0]
    spec = dict(task=task, model=args.model, batch=args.batch, queries=args.queries, device=args.device,
                amp=args.amp, threads=args.threads, steps=args.steps, warmup=args.warmup, seed=0, things=args.things,
                stuff=args.stuff, side=args.side, num_cp=args.num_cp, phase=args.phases.split(',')[0],
                **TASK_DEFAULTS[task])
    for key in ('size', 'classes', 'stuff_classes'):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        spec['weights'] = osp.join(tmp, 'weights.pth')
        save_reference_weights(spec, spec['weights'])
        res = run_worker(dict(spec, breakdown=True))
        print(f"{REF_NAME[task] if args.side == 'ref' else 'm2f_mm'} {spec['phase']} ({task}, "
              f"{spec['size']} px, {args.threads} threads): {res['seconds']:.3f} s per step, median of "
              f"{args.steps}; of which (module timers, nested: the head forward includes the pixel decoder)")
        for key, seconds in res['breakdown'].items():
            print(f'  {key:28s} {seconds:7.3f} s')
        if args.top:
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                run_worker(dict(spec, steps=1, warmup=1))
            print('torch.profiler, warm-up step + 1 step, top operators by self CPU time:')
            print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=args.top))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='mode', help='compare (default): side by side with mmdet / mmseg; '
                                'profile: module timers of one side; fps: inference throughput of a config')
    cmp_parser = sub.add_parser('compare', help='ours vs mmdet/mmseg, fresh processes, alternating (default)')
    prof_parser = sub.add_parser('profile', help='where one side spends its step: module timers (+ top operators)')
    for p in (cmp_parser, prof_parser):
        p.add_argument('--task', nargs='+', choices=['panoptic', 'semantic'], default=['panoptic', 'semantic'])
        p.add_argument('--model', choices=['mask2former', 'maskformer'], default='mask2former',
                       help='the architecture on both sides (default mask2former)')
        p.add_argument('--size', type=int, help='square input side (default 384 panoptic, 512 semantic)')
        p.add_argument('--batch', type=int, default=2)
        p.add_argument('--queries', type=int, default=100)
        p.add_argument('--classes', type=int, help='classes (default 133 panoptic, 150 semantic)')
        p.add_argument('--stuff-classes', type=int, help='panoptic: stuff classes among --classes (default 53)')
        p.add_argument('--things', type=int, default=6, help='thing segments per image (semantic: segments)')
        p.add_argument('--stuff', type=int, default=2, help='stuff segments per image (semantic: more segments)')
        p.add_argument('--device', default='cpu')
        p.add_argument('--amp', choices=['none', 'float16', 'bfloat16'], default='none')
        if p is cmp_parser:
            p.add_argument('--threads', type=int, nargs='+', default=[1, 2],
                           help='torch threads; each count is a side-by-side of its own (default: 1 2)')
        else:
            p.add_argument('--threads', type=int, default=os.cpu_count() or 1)
        p.add_argument('--steps', type=int, default=3, help='timed steps per process')
        p.add_argument('--warmup', type=int, default=1, help='untimed steps per process')
        p.add_argument('--phases', default='train,infer', help='train, infer or both (comma-separated)')
        p.add_argument('--num-cp', type=int, default=0,
                       help='recompute the first N pixel-decoder encoder layers in backward, both sides (mmdet\'s '
                            'needs fairscale: pip install fairscale)')
    cmp_parser.add_argument('--rounds', type=int, default=3, help='fresh processes per side and phase')
    prof_parser.add_argument('--side', choices=['ours', 'ref'], default='ours')
    prof_parser.add_argument('--top', type=int, default=0, help='also list this many torch.profiler operators')
    fps_parser = sub.add_parser('fps', help='inference throughput of one config')
    fps_parser.add_argument('config')
    fps_parser.add_argument('--checkpoint')
    fps_parser.add_argument('--size', type=int, default=384)
    fps_parser.add_argument('--batch', type=int, default=1)
    fps_parser.add_argument('--iters', type=int, default=10)
    fps_parser.add_argument('--warmup', type=int, default=2)
    fps_parser.add_argument('--device', default='cpu')
    fps_parser.add_argument('--amp', choices=['none', 'float16', 'bfloat16'], default='none')
    fps_parser.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith('-') and argv[0] not in ('-h', '--help'):
        argv = ['compare'] + list(argv)
    return parser.parse_args(argv)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == '_worker':
        import warnings
        warnings.filterwarnings('ignore')
        print(json.dumps(run_worker(json.loads(sys.argv[2]))))
        return
    args = parse_args()
    if getattr(args, 'device', 'cpu').startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise SystemExit(f'--device {args.device}: no CUDA device here; use --device cpu')
    {'compare': compare, 'fps': fps, 'profile': profile}[args.mode](args)


if __name__ == '__main__':
    main()
