"""Draw a dataset's ground truth after its pipeline (what the model is trained on), like mmdet's and mmseg's.

    python tools/analysis_tools/browse_dataset.py CONFIG [--split train|val|test] [--output-dir DIR]
        [--num-images 20] [--show] [--cfg-options K=V ...]

Uses the config's visualizer (mmdet configs: instance masks and the semantic map over the image;
mmseg configs: the label map), one PNG per image in --output-dir.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402,F401  (must come first: checks the install, registers m2f_mm)

import numpy as np  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402


def draw_sample(visualizer, item: dict, out_file: str, show: bool) -> None:
    """item: one pipeline output (inputs [3, H, W] BGR uint8, data_samples) -> a picture of its ground truth."""
    sample = item['data_samples'].numpy()
    image = np.ascontiguousarray(item['inputs'].permute(1, 2, 0).numpy()[..., ::-1])  # BGR -> RGB, for cv2
    if 'gt_instances' in sample:
        from mmdet.structures.bbox import BaseBoxes
        instances = sample.gt_instances
        if isinstance(instances.get('bboxes'), BaseBoxes):
            instances.bboxes = instances.bboxes.tensor
        if hasattr(instances.get('masks'), 'to_ndarray'):  # BitmapMasks / PolygonMasks
            instances.masks = instances.masks.to_ndarray().astype(bool)
    visualizer.add_datasample(osp.basename(sample.img_path), image, sample, draw_pred=False, show=show,
                              out_file=out_file)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='config file path (mmdet or mmseg)')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                        help='which dataloader\'s dataset and pipeline to draw')
    parser.add_argument('--output-dir', default='outputs/browse_dataset', help='where the pictures go')
    parser.add_argument('--num-images', type=int, default=20, help='how many images (from the first)')
    parser.add_argument('--show', action='store_true', help='also show each picture in a window')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings, e.g. train_dataloader.dataset.data_root=data/synthetic/')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from m2f_mm.config import check_data_files, resolve_config
    resolve_config(cfg, 'data')  # data_root into every split, classes from the annotation files
    check_data_files(cfg, [args.split])
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    registries = __import__(f'{scope}.registry', fromlist=['DATASETS', 'VISUALIZERS'])
    dataset = registries.DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    visualizer = registries.VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(args.output_dir, exist_ok=True)
    count = min(args.num_images, len(dataset))
    for index in range(count):
        item = dataset[index]
        name = osp.splitext(osp.basename(item['data_samples'].img_path))[0]
        draw_sample(visualizer, item, osp.join(args.output_dir, f'{name}.png'), args.show)
    print(f'drew {count} of {len(dataset)} {args.split} images into {args.output_dir}')
    return 0


if __name__ == '__main__':
    _env_guard.run_tool(main)
