"""CPU speed of the exported network: eager PyTorch against onnxruntime, each in fresh processes.

    python tools/deployment/benchmark_onnx.py CONFIG [--checkpoint CKPT] [--size H W] [--runs 3] [--steps 3]
        [--warmup 1] [--threads 2] [--work-dir DIR]

Exports CONFIG's model (the checkpoint's weights, or seeded random ones: the speed is the same) with
--dynamic into --work-dir, then runs --runs fresh processes per backend, alternating the backends. Each
process builds its backend, preprocesses one seeded noise image of --size (default: the config's test
size, e.g. 800 x 1333 for the COCO R50 config, padded to 800 x 1344), runs --warmup untimed steps, resets
the peak resident memory (/proc/self/clear_refs) and times --steps steps of the network alone (image tensor
-> cls / mask logits; PyTorch with its compiled CPU deformable attention, onnxruntime with the exported
graph; the preprocessing and the fusion are the same Python code for both and are not timed). Printed per
backend: the median over processes of each process's median step, the peak resident memory, and the ratio
onnxruntime / PyTorch. Both backends get --threads intra-op threads.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402,F401  (must come first: checks the install, registers m2f_mm)

BACKENDS = ('pytorch', 'onnxruntime')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='an m2f_mm config (mmdet or mmseg)')
    parser.add_argument('--checkpoint', default=None, help='weights (default: seeded random ones)')
    parser.add_argument('--size', nargs=2, type=int, metavar=('H', 'W'), default=None,
                        help='image size before the test pipeline (default: the config\'s test Resize scale)')
    parser.add_argument('--runs', type=int, default=3, help='fresh processes per backend')
    parser.add_argument('--steps', type=int, default=3, help='timed steps per process')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per process first')
    parser.add_argument('--threads', type=int, default=2, help='intra-op threads of both backends')
    parser.add_argument('--work-dir', default='work_dirs/benchmark_onnx', help='where the ONNX file goes')
    parser.add_argument('--child', choices=BACKENDS, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _vm_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ':'))


def _model(args):
    import torch

    from m2f_mm.apis import init_model
    torch.manual_seed(0)
    return init_model(args.config, args.checkpoint, device='cpu')


def child(args) -> dict:
    """One process, one backend: -> {'step_s': median seconds, 'peak_mib': peak RSS while timing}."""
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    from m2f_mm.deploy import OnnxModel
    from m2f_mm.deploy.export import LogitsNet
    images = np.load(osp.join(args.work_dir, 'images.npy'))  # preprocessed once by the parent
    if args.child == 'pytorch':
        net = LogitsNet(_model(args)).eval()
        tensor = torch.from_numpy(images)

        def step():
            with torch.no_grad():
                net(tensor)
    else:
        onnx_model = OnnxModel(osp.join(args.work_dir, 'model.onnx'), threads=args.threads)

        def step():
            onnx_model.logits(images)
    for _ in range(args.warmup):
        step()
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM to the current resident set
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return dict(step_s=statistics.median(times), peak_mib=_vm_kib('VmHWM') / 1024,
                input=list(images.shape[2:]))


def default_size(config: str):
    from m2f_mm.deploy.export import _pipeline_resize
    from mmengine.config import Config
    resize = _pipeline_resize(Config.fromfile(config))
    if resize is None:
        raise SystemExit('benchmark_onnx: the config has no test Resize; give --size H W')
    return min(resize['scale']), max(resize['scale'])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print('RESULT ' + json.dumps(child(args)))
        return 0
    args.size = args.size or default_size(args.config)
    import numpy as np

    from m2f_mm.deploy import OnnxModel, export_onnx
    os.makedirs(args.work_dir, exist_ok=True)
    start = time.perf_counter()
    export_onnx(_model(args), osp.join(args.work_dir, 'model.onnx'), dynamic=True)
    print(f'exported {args.work_dir}/model.onnx in {time.perf_counter() - start:.1f} s')
    image = np.random.default_rng(0).integers(0, 256, (args.size[0], args.size[1], 3), dtype=np.uint8)
    np.save(osp.join(args.work_dir, 'images.npy'), OnnxModel(osp.join(args.work_dir, 'model.onnx')).preprocess(image)[0])
    results = {b: [] for b in BACKENDS}
    base = [sys.executable, osp.abspath(__file__), args.config, '--size', *map(str, args.size), '--steps',
            str(args.steps), '--warmup', str(args.warmup), '--threads', str(args.threads), '--work-dir', args.work_dir]
    if args.checkpoint:
        base += ['--checkpoint', args.checkpoint]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for run in range(args.runs):
        for backend in (BACKENDS if run % 2 == 0 else BACKENDS[::-1]):
            proc = subprocess.run(base + ['--child', backend], capture_output=True, text=True, env=env)
            line = next((x for x in proc.stdout.splitlines() if x.startswith('RESULT ')), None)
            if proc.returncode or line is None:
                raise SystemExit(f'benchmark_onnx: the {backend} process failed:\n{proc.stderr[-2000:]}')
            results[backend].append(json.loads(line[7:]))
            print(f'run {run + 1} {backend}: {results[backend][-1]["step_s"] * 1000:.1f} ms, '
                  f'peak {results[backend][-1]["peak_mib"]:.0f} MiB', flush=True)
    summary = {b: dict(step_ms=statistics.median(r['step_s'] for r in rs) * 1000,
                       peak_mib=statistics.median(r['peak_mib'] for r in rs)) for b, rs in results.items()}
    height, width = results['pytorch'][0]['input']
    print(f'\n{args.config}: image {args.size[0]}x{args.size[1]} -> network input {height}x{width}, '
          f'{args.threads} threads, median of {args.runs} processes x {args.steps} steps')
    print('| backend | latency (ms) | peak RSS (MiB) |\n|---|---|---|')
    for backend, row in summary.items():
        print(f'| {backend} | {row["step_ms"]:.1f} | {row["peak_mib"]:.0f} |')
    ratio = summary['onnxruntime']['step_ms'] / summary['pytorch']['step_ms']
    mem = summary['onnxruntime']['peak_mib'] / summary['pytorch']['peak_mib']
    print(f'onnxruntime / PyTorch: latency {ratio:.2f}x, peak memory {mem:.2f}x')
    return 0


if __name__ == '__main__':
    _env_guard.run_tool(main)
