"""Predict on an image or a folder of images and write overlays and the raw results.

    python tools/demo/image_demo.py IMAGE_OR_DIR [CONFIG] --weights CKPT [--task panoptic instance semantic]
        [--out-dir outputs/image_demo] [--device cpu|cuda] [--score-thr 0.5] [--max-size 2048]
        [--cfg-options K=V ...]
    python tools/demo/image_demo.py IMAGE_OR_DIR --backend onnxruntime --weights MODEL.onnx [--task ...]

With ``--backend onnxruntime`` the model is a file written by tools/deployment/pytorch2onnx.py (with its
MODEL.m2f.json): no config, no checkpoint, the same fusion and result files (m2f_mm.deploy); --cfg-options
then only takes model.test_cfg.KEY=VALUE (fusion settings) and --device only cpu.

CONFIG is optional: a checkpoint written by tools/train.py holds the config it was trained with and its
classes. With a repository config, the model still takes the checkpoint's classes.

Works with the mmdet configs (panoptic, instance and semantic from one model) and the mmseg configs
(semantic). Writes, under --out-dir:
    vis/NAME_TASK.png                    image | result, titled columns, class names and a legend
    panoptic/NAME.png + panoptic.json    COCO panoptic (no panopticapi needed)
    instances.json                       COCO instance results, RLE masks
    semantic/NAME.png                    label PNG (class index, 255 = no class)
    images.json                          each image's file name and the height / width of its results
An empty result (nothing predicted) is drawn as such, not an error. Uses m2f_mm.apis.

Every file of a folder is tried: one that is not a readable image is skipped with a line and counted
(exit status 0 when at least one image worked, 1 when none did). An image whose longest side exceeds
--max-size is shrunk to it (aspect ratio kept) before prediction, with a line saying so; its results
and pictures are at the shrunk size (images.json records it): at the original size, the fusion, the
masks and the pictures of a 6000 x 6000 photo took 15 GB through the tiny config, 2.5 GB shrunk to 2048.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402,F401  (must come first: checks the install, registers m2f_mm)

from mmengine.config import DictAction  # noqa: E402

TASKS = ('panoptic', 'instance', 'semantic')
# Cityscapes' full resolution (2048 x 1024), the largest any config here evaluates at: bigger inputs only
# cost memory (a 6000 x 6000 photo through the tiny config: 15 GB and 3.4 CPU-minutes; shrunk: 2.5 GB, 0.5).
DEFAULT_MAX_SIZE = 2048


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('inputs', metavar='IMAGE_OR_DIR', help='an image file, or a folder: every image in it')
    parser.add_argument('config', nargs='?', default=None,
                        help='an m2f_mm config (mmdet or mmseg); default: the config stored in the checkpoint')
    parser.add_argument('--weights', required=True,
                        help='checkpoint (.pth) trained with the config; with --backend onnxruntime the .onnx file')
    parser.add_argument('--backend', choices=('pytorch', 'onnxruntime'), default='pytorch',
                        help='pytorch: the config + checkpoint; onnxruntime: an exported .onnx (docs/deployment.md)')
    parser.add_argument('--task', nargs='+', choices=TASKS, default=None,
                        help='tasks to predict and draw (default: every task the config enables; mmdet '
                             'configs can compute all three, mmseg configs semantic only)')
    parser.add_argument('--out-dir', default='outputs/image_demo', help='where the pictures and results go')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--score-thr', type=float, default=0.5, help='instances drawn above this score')
    parser.add_argument('--max-size', type=int, default=DEFAULT_MAX_SIZE, metavar='N',
                        help='images whose longest side exceeds N px are shrunk to N (aspect ratio kept) before '
                             'prediction; their results and pictures are at the shrunk size. 0: no limit')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.test_cfg.object_mask_thr=0.5')
    return parser.parse_args(argv)


def list_images(inputs: str):
    """A file -> [it]; a folder -> its files (not hidden ones), sorted; anything else -> a clear error.
    Whether each is an image is found out when it is read (:func:`read_image`)."""
    if osp.isfile(inputs):
        return [inputs]
    if osp.isdir(inputs):
        files = sorted(osp.join(inputs, f) for f in os.listdir(inputs)
                       if not f.startswith('.') and osp.isfile(osp.join(inputs, f)))
        if not files:
            raise SystemExit(f'image_demo: folder {inputs!r} holds no file')
        return files
    raise SystemExit(f'image_demo: {inputs!r} is neither an image file nor a folder')


def read_image(path: str):
    """-> (BGR uint8 array [H, W, 3], None), or (None, what is wrong) for a file that is not a complete image."""
    import mmcv

    from m2f_mm.datasets.check import image_decodes
    problem = image_decodes(path)  # PIL decodes it all: truncated files fail here, not half-drawn
    image = None if problem else mmcv.imread(path)
    if image is None:
        return None, problem or 'OpenCV cannot decode it'
    return image, None


def bounded(image, max_size: int):
    """``image`` [H, W, C] shrunk so that its longest side is ``max_size`` (aspect kept); unchanged
    when it is not larger or ``max_size`` is 0. -> (image, resized?)."""
    import mmcv
    h, w = image.shape[:2]
    if max_size <= 0 or max(h, w) <= max_size:
        return image, False
    scale = max_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return mmcv.imresize(image, size, interpolation='area'), True


def task_options(cfg, tasks, cfg_options):
    """Turn --task into the config switches: mmdet configs compute exactly the asked tasks; mmseg
    configs only do semantic. -> (cfg_options, tasks to draw or None for all)."""
    config = cfg.filename or 'the config'
    options = dict(cfg_options or {})
    if cfg.get('default_scope', 'mmdet') == 'mmseg':
        if tasks and set(tasks) - {'semantic'}:
            raise SystemExit(f'image_demo: {config} is an mmseg (semantic) config; --task '
                             f'{" ".join(sorted(set(tasks) - {"semantic"}))} needs an mmdet config')
        return options, ['semantic']
    if tasks:
        for task in TASKS:
            options[f'model.test_cfg.{task}_on'] = task in tasks
    return options, tasks


def onnx_predictor(args):
    """--backend onnxruntime: (predict(image) -> data sample, dataset_meta, tasks to draw or None)."""
    from m2f_mm.deploy import MissingDeployExtra, OnnxModel, inference_onnx
    if args.config is not None:
        raise SystemExit('image_demo: --backend onnxruntime takes no CONFIG: the .onnx file\'s MODEL.m2f.json '
                         'holds what it needs')
    if args.device != 'cpu':
        raise SystemExit('image_demo: --backend onnxruntime runs on cpu only (--device cpu)')
    test_cfg = {}
    for key, value in (args.cfg_options or {}).items():
        if not key.startswith('model.test_cfg.'):
            raise SystemExit(f'image_demo: --cfg-options {key}: with --backend onnxruntime only '
                             'model.test_cfg.KEY=VALUE (fusion settings) can change; export again for the rest')
        test_cfg[key[len('model.test_cfg.'):]] = value
    tasks = args.task
    try:
        model = OnnxModel(args.weights)
        if model.scope == 'mmseg':
            if tasks and set(tasks) - {'semantic'}:
                raise SystemExit(f'image_demo: {args.weights} is an mmseg (semantic) model; --task '
                                 f'{" ".join(sorted(set(tasks) - {"semantic"}))} needs an mmdet one')
            tasks = ['semantic']
        elif tasks:
            test_cfg.update({f'{task}_on': task in tasks for task in TASKS})
        model.spec['test_cfg'].update(test_cfg)
    except (MissingDeployExtra, FileNotFoundError, ValueError) as err:
        raise SystemExit(f'image_demo: {err}')
    return (lambda image: inference_onnx(model, image)), model.dataset_meta, tasks


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmcv

    from m2f_mm.apis import ResultWriter, inference_model, init_model, prediction_arrays
    from m2f_mm.apis.results import INSTANCE_OFFSET
    from m2f_mm.errors import M2FError, short_message
    from m2f_mm.visualization import instance_figure, panoptic_figure, semantic_figure
    from PIL import Image

    from m2f_mm.apis.inference import load_config
    from m2f_mm.checkpoints.loading import load_checkpoint_file  # one line for a file that cannot be read

    images = list_images(args.inputs)
    if args.backend == 'onnxruntime':
        predict, meta, tasks = onnx_predictor(args)
    else:
        try:
            checkpoint = load_checkpoint_file(args.weights) if args.config is None else None
            options, tasks = task_options(load_config(args.config, None, checkpoint, args.weights), args.task,
                                          args.cfg_options)
            model = init_model(args.config, args.weights, device=args.device, cfg_options=options)
        except (FileNotFoundError, ValueError, M2FError) as err:  # M2FError: a checkpoint that cannot be read
            raise SystemExit(f'image_demo: {short_message(err) if isinstance(err, M2FError) else err}')
        meta = model.dataset_meta
        predict = (lambda image: inference_model(model, image))
    classes = list(meta['classes'])
    palette = meta.get('palette') or [[(37 * i) % 256, (97 * i) % 256, (173 * i) % 256] for i in range(len(classes))]
    num_things = len(meta['thing_classes']) if 'thing_classes' in meta else None
    writer = ResultWriter(args.out_dir, classes, num_things)
    os.makedirs(osp.join(args.out_dir, 'vis'), exist_ok=True)
    skipped = 0
    for path in images:
        image, problem = read_image(path)
        if image is None:
            skipped += 1
            print(f'{path}: skipped, not a readable image ({problem})')
            continue
        original = image.shape[:2]
        image, resized = bounded(image, args.max_size)
        if resized:
            print(f'{path}: {original[1]}x{original[0]} (WxH) is larger than --max-size {args.max_size}: resized to '
                  f'{image.shape[1]}x{image.shape[0]}; its results are at that size')
        sample = predict(image)
        sample.set_metainfo(dict(img_path=path))  # images.json names the file, not the array
        name = osp.splitext(osp.basename(path))[0]
        arrays = prediction_arrays(sample)
        drawn = [t for t in (tasks or TASKS) if t in arrays]
        missing = [t for t in (tasks or []) if t not in arrays]
        if missing:
            raise SystemExit(f'image_demo: the model produced no {", ".join(missing)} result')
        writer.add(sample, name, drawn)
        image = mmcv.bgr2rgb(image)
        for task in drawn:
            if task == 'panoptic':
                figure = panoptic_figure(image, arrays['panoptic']['pan'], classes, palette, INSTANCE_OFFSET)
            elif task == 'instance':
                inst = arrays['instance']
                figure = instance_figure(image, inst['masks'], inst['labels'], inst['scores'], classes, palette,
                                         args.score_thr)
            else:
                figure = semantic_figure(image, arrays['semantic']['sem'], classes, palette)
            out = osp.join(args.out_dir, 'vis', f'{name}_{task}.png')
            Image.fromarray(figure).save(out)
            print(f'{path}: {task} -> {out}')
    for path in writer.close():
        print(f'wrote {path}')
    done = len(images) - skipped
    print(f'{done} image(s) predicted, {skipped} file(s) skipped as not readable images')
    if not done:
        raise SystemExit(f'image_demo: none of the {len(images)} file(s) in {args.inputs!r} is a readable image')
    return 0


if __name__ == '__main__':
    _env_guard.run_tool(main)
