"""Build a detector from a config and run one forward pass on a synthetic image (CPU).

    python tools/demo/demo_forward.py configs/m2f_r50_8xb2-lsj-50e_coco-panoptic.py [--size 256 320]

Prints the shapes of all prediction sets and the panoptic / instance / semantic outputs.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402  (must come first: checks mmcv, registers m2f_mm)

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='an m2f_mm mmdet config (its model is built with random weights)')
    parser.add_argument('--size', type=int, nargs=2, default=[256, 320], metavar=('H', 'W'),
                        help='height and width of the random test image (default: 256 320)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args()

    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    from m2f_mm.config import load_resolved
    cfg = load_resolved(args.config, args.cfg_options)  # class counts from the config's data
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.backbone.init_cfg = None  # no pretrained download for a shape demo
    model = MODELS.build(cfg.model).eval()
    torch.manual_seed(0)
    h, w = args.size
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), training=False)
    start = time.perf_counter()
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        cls_sets, mask_sets = model.panoptic_head(feats, data['data_samples'])
        results = model.predict(data['inputs'], data['data_samples'])
    elapsed = time.perf_counter() - start
    print(f'config: {args.config}')
    print(f'input: {tuple(data["inputs"].shape)}  backbone features: {[tuple(f.shape) for f in feats]}')
    print(f'{len(cls_sets)} prediction sets: class logits {tuple(cls_sets[-1].shape)}, '
          f'mask logits {tuple(mask_sets[-1].shape)}')
    result = results[0]
    for field in ('pred_panoptic_seg', 'pred_sem_seg'):
        if field in result:
            print(f'{field}: {tuple(result.get(field).sem_seg.shape)}')
    if 'pred_instances' in result:
        inst = result.pred_instances
        print(f'pred_instances: masks {tuple(inst.masks.shape)}, boxes {tuple(inst.bboxes.shape)}')
    print(f'forward + inference: {elapsed:.2f} s on {next(model.parameters()).device}')


if __name__ == '__main__':
    _env_guard.run_tool(main)
