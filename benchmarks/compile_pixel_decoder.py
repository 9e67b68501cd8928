"""torch.compile of the pixel decoder against eager, in one process, alternating (A/B):

    python benchmarks/compile_pixel_decoder.py [--size 384] [--batch 2] [--rounds 5] [--threads 1] [--phases infer,train]

The R50 COCO panoptic config's ``M2FPixelDecoder`` (the deformable-attention encoder and the FPN; the custom op has
fake kernels, so the whole module compiles), random weights, backbone maps of random images. Inference: forward
under ``no_grad``; training: forward + backward of a scalar over every output. Prints the compile time (first call),
the largest output difference, each round and the ratio of the medians (the first round dropped).

Measured on the 2-core CPU machine, one thread, two training runs sharing it (so only the ratios mean anything),
384 px, batch 2: compile + first call 65 s (training 60 s); inference 0.91x of eager (outputs within 3e-6);
training step 1.14x (slower; in training dynamo recompiles mmcv's ``ConvModule.forward`` for each channel width
until it reaches its recompile limit and leaves that frame eager). Not used by default.
"""
import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=384)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--phases', default='infer,train', help='infer, train or both (comma-separated)')
    args = parser.parse_args()

    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config

    import m2f_mm  # noqa: F401  registers the model
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile('configs/m2f_r50_8xb2-lsj-50e_coco-panoptic.py')
    cfg.model.backbone.init_cfg = None
    for key in ('panoptic_head', 'panoptic_fusion_head'):
        cfg.model[key].update(num_things_classes=80, num_stuff_classes=53)
    model = MODELS.build(cfg.model)
    torch.manual_seed(0)
    with torch.no_grad():
        feats = model.eval().extract_feat(torch.randn(args.batch, 3, args.size, args.size))
    decoder = model.panoptic_head.pixel_decoder

    def tensors(out):
        return [t for t in torch.utils._pytree.tree_leaves(out) if torch.is_tensor(t)]

    def infer(module):
        with torch.no_grad():
            return module(feats)

    def train(module):
        out = module(feats)
        sum(t.float().pow(2).mean() for t in tensors(out) if t.is_floating_point()).backward()
        decoder.zero_grad(set_to_none=True)
        return out

    for phase in args.phases.split(','):
        step = dict(infer=infer, train=train)[phase]
        decoder.train(phase == 'train')
        start = time.perf_counter()
        compiled = torch.compile(decoder)
        out = step(compiled)
        print(f'{phase}: compile + first call {time.perf_counter() - start:.1f} s', flush=True)
        if phase == 'infer':
            diff = max((a - b).abs().max().item() for a, b in zip(tensors(out), tensors(infer(decoder))))
            print(f'{phase}: largest output difference {diff:.2e}')
        times = {'eager': [], 'compiled': []}
        for _ in range(args.rounds):
            for name, module in (('eager', decoder), ('compiled', compiled)):
                start = time.perf_counter()
                step(module)
                times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(values[1:] or values) for name, values in times.items()}
        for name, values in times.items():
            print(f"{phase}, {name}: median {medians[name]:.3f} s  ({', '.join(f'{v:.2f}' for v in values)})")
        print(f"{phase}: compiled / eager = {medians['compiled'] / medians['eager']:.3f}", flush=True)


if __name__ == '__main__':
    main()
