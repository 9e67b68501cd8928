"""Models, weights and inputs for benchmarks/benchmark.py (one fresh process per side).

Shape legend: B batch, S image side (square inputs, no padding), Q queries, C classes.

Both sides are built from their own configs with the same sizes:

- panoptic: mmdet 3.3.0's ``mask2former_r50_8xb2-lsj-50e_coco-panoptic.py`` (batch augment to
  1024 px removed) vs our ``configs/_base_/models/m2f_r50.py``;
- semantic: mmseg 1.2.2's ``mask2former_r50_8xb2-160k_ade20k-512x512.py`` vs our
  ``configs/_base_/models/m2f_r50_seg.py`` (SyncBN -> BN on both, one process);
- ``model='maskformer'``: mmdet's ``maskformer_r50_ms-16xb1-75e_coco.py`` vs our
  ``maskformer_r50.py``, mmseg's ``maskformer_r50-d32_8xb2-160k_ade20k-512x512.py`` vs our
  ``maskformer_r50_seg.py``.

Weights: the reference model is built once with a fixed seed (its head parameters nudged so no
layer is left at zero), saved, and loaded by both sides; ours goes through
:func:`m2f_mm.checkpoints.convert_mmdet_to_m2f` and loads strictly. Inputs: seeded uint8 images
and ``things`` rectangles + ``stuff`` regions per image (semantic: ``things + stuff`` classes).
"""
import copy
import os.path as osp
from typing import Dict, List, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


REFERENCE_CONFIGS = {
    ('mask2former', 'panoptic'): ('mmdet', 'mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py'),
    ('mask2former', 'semantic'): ('mmseg', 'mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'),
    ('maskformer', 'panoptic'): ('mmdet', 'maskformer/maskformer_r50_ms-16xb1-75e_coco.py'),
    ('maskformer', 'semantic'): ('mmseg', 'maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py'),
}
OUR_CONFIGS = {
    ('mask2former', 'panoptic'): 'm2f_r50.py',
    ('mask2former', 'semantic'): 'm2f_r50_seg.py',
    ('maskformer', 'panoptic'): 'maskformer_r50.py',
    ('maskformer', 'semantic'): 'maskformer_r50_seg.py',
}


def reference_config_path(task: str, model: str = 'mask2former') -> str:
    import importlib
    package, name = REFERENCE_CONFIGS[model, task]
    return osp.join(osp.dirname(importlib.import_module(package).__file__), '.mim', 'configs', name)


def our_config_path(task: str, model: str = 'mask2former') -> str:
    return osp.join(ROOT, 'configs', '_base_', 'models', OUR_CONFIGS[model, task])


def _num_classes(spec: dict) -> Tuple[int, int]:
    """(things, stuff) for panoptic; (0, C) for semantic."""
    if spec['task'] == 'semantic':
        return 0, spec['classes']
    return spec['classes'] - spec['stuff_classes'], spec['stuff_classes']


def model_config(spec: dict, side: str) -> dict:
    """The ``model`` config of one side, resized to the benchmark's settings."""
    from mmengine.config import Config
    arch = spec.get('model', 'mask2former')
    path = reference_config_path(spec['task'], arch) if side == 'ref' else our_config_path(spec['task'], arch)
    model = copy.deepcopy(Config.fromfile(path).model)
    model.backbone.init_cfg = None  # no download: the weights come from the saved file
    model.backbone.norm_cfg = dict(type='BN', requires_grad=False)
    things, stuff = _num_classes(spec)
    classes = things + stuff
    head_key = 'panoptic_head' if spec['task'] == 'panoptic' else 'decode_head'
    head = model[head_key]
    head.num_queries = spec['queries']
    if spec['task'] == 'panoptic':
        model.data_preprocessor.pop('batch_augments', None)
        head.num_things_classes, head.num_stuff_classes = things, stuff
        model.panoptic_fusion_head.num_things_classes = things
        model.panoptic_fusion_head.num_stuff_classes = stuff
        model.test_cfg.semantic_on = False  # mmdet has no semantic output
        model.test_cfg.instance_on = model.test_cfg.panoptic_on = True
    else:
        head.num_classes = classes
        model.data_preprocessor.size = (spec['size'], spec['size'])
    if spec.get('num_cp') and arch != 'mask2former':
        raise SystemExit('--num-cp applies to Mask2Former\'s MSDeformAttn encoder only')
    if spec.get('num_cp'):  # activation checkpointing of the first num_cp encoder layers, on both sides
        head.pixel_decoder.encoder.num_cp = spec['num_cp']
    if side == 'ref':
        head.loss_cls.class_weight = [1.0] * classes + [0.1]
    else:
        head.criterion.num_classes = classes
    return model


def build_model(spec: dict, side: str):
    """The model of one side (random weights) under its registry's default scope."""
    from mmengine.registry import DefaultScope
    if spec['task'] == 'panoptic':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
        scope = 'mmdet'
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
        scope = 'mmseg'
    register_all_modules(init_default_scope=False)
    import m2f_mm  # noqa: F401  registers our components in both registries
    cfg = model_config(spec, side)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg)
    return model


def save_reference_weights(spec: dict, path: str) -> None:
    """Build the reference model with a fixed seed, nudge its head, save its state_dict."""
    import logging

    from mmengine.logging import MMLogger
    torch.manual_seed(spec['seed'])
    model = build_model(spec, 'ref')
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init_weights' per-tensor report
    model.init_weights()
    head = model.panoptic_head if spec['task'] == 'panoptic' else model.decode_head
    with torch.no_grad():  # mmdet's init leaves MSDA's attention-weight layer at zero
        for p in head.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    torch.save(model.state_dict(), path)


def load_weights(model, spec: dict, side: str, path: str) -> None:
    from m2f_mm.checkpoints import convert_mmdet_to_m2f
    state = torch.load(path, map_location='cpu', weights_only=True)
    if side == 'ours':
        prefix = 'panoptic_head.' if spec['task'] == 'panoptic' else 'decode_head.'
        as_det = {('panoptic_head.' + k[len(prefix):] if k.startswith(prefix) else k): v
                  for k, v in state.items()}
        converted, unmapped = convert_mmdet_to_m2f(as_det)
        if unmapped:
            raise RuntimeError(f'reference keys the converter does not map: {unmapped[:5]}')
        state = {(prefix + k[len('panoptic_head.'):] if k.startswith('panoptic_head.') else k): v
                 for k, v in converted.items()}
    model.load_state_dict(state, strict=True)


def _regions(size: int, count: int, gen: torch.Generator) -> List[Tuple[int, int, int, int]]:
    """``count`` random rectangles (y0, y1, x0, x1), each 1/8 to 1/3 of the side."""
    boxes = []
    for _ in range(count):
        h, w = (int(v) for v in torch.randint(size // 8, size // 3, (2, ), generator=gen))
        y, x = (int(v) for v in torch.randint(0, size - max(h, w), (2, ), generator=gen))
        boxes.append((y, y + h, x, x + w))
    return boxes


def make_batch(spec: dict) -> Dict[str, list]:
    """Seeded ``dict(inputs=[uint8 [3, S, S]] * B, data_samples=[...])`` with GT."""
    from mmengine.structures import InstanceData, PixelData
    gen = torch.Generator().manual_seed(spec['seed'] + 1)
    size, things, stuff = spec['size'], spec['things'], spec['stuff']
    num_things, num_stuff = _num_classes(spec)
    inputs, samples = [], []
    for _ in range(spec['batch']):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        meta = dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                    scale_factor=(1.0, 1.0))
        sem = torch.full((size, size), 255, dtype=torch.long)
        if spec['task'] == 'panoptic':
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            stuff_ids = num_things + torch.randperm(num_stuff, generator=gen)[:stuff]
            sem[:size // 2], sem[size // 2:] = int(stuff_ids[0]), int(stuff_ids[-1])
            labels = torch.randint(0, num_things, (things, ), generator=gen)
            masks = torch.zeros(things, size, size, dtype=torch.uint8)
            for i, (y0, y1, x0, x1) in enumerate(_regions(size, things, gen)):
                masks[i, y0:y1, x0:x1] = 1
                sem[masks[i].bool()] = int(labels[i])
            for i in range(things - 1, -1, -1):  # later things cover earlier ones, as in sem
                masks[i] &= (sem == labels[i]).to(torch.uint8)
            sample = DetDataSample(metainfo=meta)
            sample.gt_instances = InstanceData(
                labels=labels, masks=BitmapMasks(masks.numpy(), size, size),
                bboxes=torch.zeros(things, 4))
            sample.gt_sem_seg = PixelData(sem_seg=sem[None])
        else:
            from mmseg.structures import SegDataSample
            class_ids = torch.randperm(num_stuff, generator=gen)[:things + stuff]
            sem[:] = int(class_ids[0])
            for cls, (y0, y1, x0, x1) in zip(class_ids[1:], _regions(size, len(class_ids) - 1, gen)):
                sem[y0:y1, x0:x1] = int(cls)
            sample = SegDataSample(metainfo=meta)
            sample.gt_sem_seg = PixelData(data=sem[None])
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _timed(fn, add, name):
    import time

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        add(name, time.perf_counter() - start)
        return out
    return wrapper


def module_timers(model, side: str, spec: dict, add) -> None:
    """Make ``add(name, seconds)`` receive the forward time of the backbone, the pixel decoder,
    the whole head forward (pixel decoder + transformer decoder + prediction heads) and the loss
    (matching + losses, given the head's outputs)."""
    head = model.panoptic_head if spec['task'] == 'panoptic' else model.decode_head
    model.extract_feat = _timed(model.extract_feat, add, 'backbone')
    head.pixel_decoder.forward = _timed(head.pixel_decoder.forward, add, 'pixel decoder')
    head.forward = _timed(head.forward, add, 'head forward (all)')
    if side == 'ref':
        head.loss_by_feat = _timed(head.loss_by_feat, add, 'loss (matching + losses)')
    else:
        from m2f_mm.models.criterion import M2FCriterion
        M2FCriterion.__call__ = _timed(M2FCriterion.__call__, add, 'loss (matching + losses)')


def matching_timer(model, side: str, spec: dict, clock) -> None:
    """Make ``clock(seconds)`` receive the time spent matching (per call).

    Ours: ``M2FCriterion._match_set`` (points for matching, costs, one host copy, Hungarian) per
    prediction set. Reference: ``Mask2FormerHead._get_targets_single`` (the same work plus the
    per-image target tensors) per image and set.
    """
    head = model.panoptic_head if spec['task'] == 'panoptic' else model.decode_head
    add = (lambda name, seconds: clock(seconds))
    if side == 'ref':
        head._get_targets_single = _timed(head._get_targets_single, add, 'matching')
    else:
        from m2f_mm.models.criterion import M2FCriterion
        M2FCriterion._match_set = _timed(M2FCriterion._match_set, add, 'matching')
