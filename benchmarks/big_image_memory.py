"""Peak memory of one large image through ``model.predict`` (the tiny synthetic config, random weights, one thread).

    python benchmarks/big_image_memory.py --size 6000 [--tasks panoptic instance semantic]

Prints the process's peak resident memory (``ru_maxrss``) after the backbone, after the pixel decoder, after the
head, and at the end of ``predict`` (the fusion's results at the input size), and the seconds ``predict`` took.
The image is a random 3 x S x S tensor, already normalised-size (no decoding, no resize): the figures are the
model's and the fusion's.

Measured on the 2-core CPU machine, panoptic + instance + semantic: with the instance mask scores computed over
a chunk of 16 queries at once, 3072 px peaked at 4581 MB and 6000 px at 14716 MB; with them computed one query
at a time, 2569 and 8365 MB.
"""
import argparse
import resource
import time


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=3072, help='square image side in pixels')
    parser.add_argument('--tasks', nargs='+', choices=['panoptic', 'instance', 'semantic'],
                        default=['panoptic', 'instance', 'semantic'])
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()

    import torch
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import Config

    import m2f_mm  # noqa: F401  registers the model
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile('configs/m2f_r18-q24_1xb8-2k_synthetic-panoptic.py')
    for key in ('panoptic_head', 'panoptic_fusion_head'):  # the synthetic data's 4 things + 3 stuff
        cfg.model[key].update(num_things_classes=4, num_stuff_classes=3)
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.update(panoptic_on='panoptic' in args.tasks, instance_on='instance' in args.tasks,
                              semantic_on='semantic' in args.tasks)
    model = MODELS.build(cfg.model).eval()
    peaks = {}
    for name in ('backbone', 'panoptic_head.pixel_decoder', 'panoptic_head'):
        model.get_submodule(name).register_forward_hook(
            lambda module, inputs, output, name=name: peaks.__setitem__(name, peak_mb()))
    size = args.size
    image = torch.randint(0, 255, (1, 3, size, size)).float()
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                                         batch_input_shape=(size, size), scale_factor=(1.0, 1.0)))
    before = peak_mb()
    start = time.perf_counter()
    with torch.no_grad():
        model.predict(image, [sample])
    seconds = time.perf_counter() - start
    print(f"{size}x{size}, {' + '.join(args.tasks)}, {args.threads} thread(s): peak RSS before predict {before:.0f} MB, "
          + ', '.join(f'after {k} {v:.0f} MB' for k, v in peaks.items())
          + f', at the end {peak_mb():.0f} MB; predict {seconds:.1f} s')


if __name__ == '__main__':
    main()
