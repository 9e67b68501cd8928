"""Each mmdet 3.3 / mmsegmentation 1.2.2 equivalent has the in-tree Mask2Former config's recipe.

For every pair the test reads the same fields from both configs (optimizer, clipping, schedule,
batch, pipelines and crop, data preprocessor, backbone and its pretrained weights, queries and
classes, loss and matching weights, test_cfg, evaluators) and compares them; the parameter-wise
learning rates and weight decays are compared as their *effect*: both models are built (no
weights) and mmengine's optimizer constructor gives each parameter its lr and decay, the
reference's parameters renamed to ours with the checkpoint key mapping. Every difference is
listed; the test passes only when the differences are exactly the allow-listed, documented ones
(ALLOWED). Renamed-but-equivalent components (our panoptic loader and PQ metric) are mapped first.
"""
import os.path as osp
import sys
from typing import Dict, List, Tuple

import mmdet
import mmseg
import pytest
from mmengine.config import Config
from mmengine.optim import DefaultOptimWrapperConstructor

from m2f_mm.checkpoints import convert_mmdet_to_m2f

# the config-building helpers of tests/configs/ (importlib import mode: no package imports)
sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs'))
from zoo_build import REPO, build_model, resolved  # noqa: E402

MMDET = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former')
MMSEG = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'mask2former')

# ours -> reference (file under mmdet's or mmseg's configs/mask2former)
PAIRS = {
    'm2f_r50_8xb2-lsj-50e_coco-panoptic.py': 'mmdet/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
    'm2f_r101_8xb2-lsj-50e_coco-panoptic.py': 'mmdet/mask2former_r101_8xb2-lsj-50e_coco-panoptic.py',
    'm2f_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py':
        'mmdet/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py',
    'm2f_swin-s-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py':
        'mmdet/mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py',
    'm2f_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic.py':
        'mmdet/mask2former_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic.py',
    'm2f_swin-b-p4-w12-384-in21k_8xb2-lsj-50e_coco-panoptic.py':
        'mmdet/mask2former_swin-b-p4-w12-384-in21k_8xb2-lsj-50e_coco-panoptic.py',
    'm2f_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py':
        'mmdet/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py',
    'm2f_r50_8xb2-lsj-50e_coco.py': 'mmdet/mask2former_r50_8xb2-lsj-50e_coco.py',
    'm2f_r101_8xb2-lsj-50e_coco.py': 'mmdet/mask2former_r101_8xb2-lsj-50e_coco.py',
    'm2f_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py': 'mmdet/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py',
    'm2f_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py': 'mmdet/mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py',
    'm2f_r50_8xb2-160k_ade20k-512x512.py': 'mmseg/mask2former_r50_8xb2-160k_ade20k-512x512.py',
    'm2f_r101_8xb2-160k_ade20k-512x512.py': 'mmseg/mask2former_r101_8xb2-160k_ade20k-512x512.py',
    'm2f_swin-t_8xb2-160k_ade20k-512x512.py': 'mmseg/mask2former_swin-t_8xb2-160k_ade20k-512x512.py',
    'm2f_swin-s_8xb2-160k_ade20k-512x512.py': 'mmseg/mask2former_swin-s_8xb2-160k_ade20k-512x512.py',
    'm2f_swin-b-in1k-384x384-pre_8xb2-160k_ade20k-640x640.py':
        'mmseg/mask2former_swin-b-in1k-384x384-pre_8xb2-160k_ade20k-640x640.py',
    'm2f_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py':
        'mmseg/mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py',
    'm2f_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py':
        'mmseg/mask2former_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py',
    'm2f_r50_8xb2-90k_cityscapes-512x1024.py': 'mmseg/mask2former_r50_8xb2-90k_cityscapes-512x1024.py',
    'm2f_r101_8xb2-90k_cityscapes-512x1024.py': 'mmseg/mask2former_r101_8xb2-90k_cityscapes-512x1024.py',
    'm2f_swin-t_8xb2-90k_cityscapes-512x1024.py': 'mmseg/mask2former_swin-t_8xb2-90k_cityscapes-512x1024.py',
    'm2f_swin-s_8xb2-90k_cityscapes-512x1024.py': 'mmseg/mask2former_swin-s_8xb2-90k_cityscapes-512x1024.py',
    'm2f_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py':
        'mmseg/mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py',
    'm2f_swin-l-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py':
        'mmseg/mask2former_swin-l-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py',
}

# Components of ours that stand in for the reference's (same behaviour, no panopticapi).
SAME_AS = {'M2FLoadPanopticAnnotations': 'LoadPanopticAnnotations', 'M2FCocoPanopticMetric': 'CocoPanopticMetric',
           'M2FLoadSegAnnotations': 'LoadAnnotations'}

# Deliberate differences: field -> why (each is also stated in the config or its _base_ file).
_SEMANTIC_ON = 'test_cfg: semantic_on=True, ours also outputs (and evaluates) semantic segmentation, mmdet cannot'
_CAT_MAX = ('train_pipeline: RandomCrop cat_max_ratio=1.0 as the original (SINGLE_CATEGORY_MAX_AREA 1.0), '
            'mmseg 0.75 (_base_/datasets/{ade20k,cityscapes}_semantic.py)')
_PAD32 = 'data_preprocessor: test images padded to 32 as in the original (SIZE_DIVISIBILITY 32); mmseg pads none'
ALLOWED: Dict[str, Dict[str, str]] = {
    **{name: {'test_cfg': _SEMANTIC_ON} for name in PAIRS if name.endswith('coco-panoptic.py')},
    **{name: {} for name in PAIRS if name.endswith('_coco.py')},
    **{name: {'train_pipeline': _CAT_MAX} for name in PAIRS if 'ade20k' in name or 'cityscapes' in name},
}
for _name in ('m2f_swin-b-in1k-384x384-pre_8xb2-160k_ade20k-640x640.py',
              'm2f_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py',
              'm2f_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py'):
    ALLOWED[_name]['data_preprocessor'] = _PAD32


def _plain(value):
    """Config value without mmengine's ``_scope_`` markers (left by ``mmseg::`` bases), as plain types."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _components(steps) -> List[dict]:
    """Pipeline steps / evaluators with our stand-ins under the reference's type names."""
    return [dict(_plain(step), type=SAME_AS.get(step['type'], step['type'])) for step in steps]


def _effective_lr_decay(cfg: Config, model, rename: Dict[str, str]) -> Dict[str, Tuple[float, float]]:
    """-> {our parameter name: (lr, weight decay)} that mmengine's constructor gives each trainable one."""
    wrapper = cfg.optim_wrapper.to_dict()
    constructor = DefaultOptimWrapperConstructor(wrapper, wrapper.get('paramwise_cfg'))
    groups: List[dict] = []
    constructor.add_params(groups, model)
    names = {id(p): n for n, p in model.named_parameters()}
    lr, decay = wrapper['optimizer']['lr'], wrapper['optimizer'].get('weight_decay', 0.0)
    return {rename.get(names[id(g['params'][0])], names[id(g['params'][0])]):
            (g.get('lr', lr), g.get('weight_decay', decay)) for g in groups if g['params'][0].requires_grad}


def _to_ours(model, head: str) -> Dict[str, str]:
    """Reference parameter names -> ours (the checkpoint key mapping; mmseg's head as mmdet's)."""
    names = {n.replace(f'{head}.', 'panoptic_head.', 1): n for n, _ in model.named_parameters()}
    mapped, unmapped = convert_mmdet_to_m2f({n: n for n in names})
    assert not unmapped, unmapped
    return {names[src]: dst.replace('panoptic_head.', f'{head}.', 1) for dst, src in mapped.items()}


def _ours_losses(head) -> dict:
    c = head.criterion
    return dict(cls=c.cls_weight, mask=c.mask_weight, dice=c.dice_weight, no_object=c.no_object_weight,
                points=c.num_points, oversample=c.oversample_ratio, importance=c.importance_sample_ratio,
                match=(c.assigner.cls_weight, c.assigner.mask_weight, c.assigner.dice_weight))


def _ref_losses(head_cfg, train_cfg) -> dict:
    costs = {m['type'].split('.')[-1]: m['weight'] for m in train_cfg['assigner']['match_costs']}
    return dict(cls=head_cfg.loss_cls.loss_weight, mask=head_cfg.loss_mask.loss_weight,
                dice=head_cfg.loss_dice.loss_weight, no_object=head_cfg.loss_cls.class_weight[-1],
                points=train_cfg.num_points, oversample=train_cfg.oversample_ratio,
                importance=train_cfg.importance_sample_ratio,
                match=(costs['ClassificationCost'], costs['CrossEntropyLossCost'], costs['DiceCost']))


def recipe(cfg: Config, ours: bool) -> dict:
    """The compared fields of one config (ours or the reference), model built without weights."""
    model = build_model(cfg)
    det = cfg.default_scope == 'mmdet'
    head_key = 'panoptic_head' if det else 'decode_head'
    head, head_cfg = getattr(model, head_key), cfg.model[head_key]
    backbone = {k: v for k, v in cfg.model.backbone.items() if k != 'init_cfg'}
    test_cfg = dict(cfg.model.test_cfg)
    if det:  # mmdet's fusion head reads object_mask_thr with a default of 0.8
        test_cfg.setdefault('object_mask_thr', 0.8)
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
    fields = dict(
        optimizer=cfg.optim_wrapper.optimizer.to_dict(),
        clip_grad=cfg.optim_wrapper.clip_grad.to_dict(),
        lr_and_decay_per_parameter=_effective_lr_decay(cfg, model, {} if ours else _to_ours(model, head_key)),
        schedule=(cfg.train_cfg.to_dict(), [dict(s) for s in (cfg.param_scheduler if isinstance(
            cfg.param_scheduler, list) else [cfg.param_scheduler])]),
        auto_scale_lr=cfg.get('auto_scale_lr'),
        batch_size=cfg.train_dataloader.batch_size,
        train_pipeline=_components(cfg.train_dataloader.dataset.pipeline),
        test_pipeline=_components(cfg.test_dataloader.dataset.pipeline),
        data_preprocessor={k: v for k, v in cfg.model.data_preprocessor.items() if k != 'batch_augments'},
        batch_augments=cfg.model.data_preprocessor.get('batch_augments'),
        backbone=backbone,
        pretrained=cfg.model.backbone.get('init_cfg', {}).get('checkpoint'),
        queries=head.num_queries,
        classes=head.num_classes,
        head_widths=(head_cfg.feat_channels, head_cfg.out_channels, head_cfg.strides),
        losses=_ours_losses(head) if ours else _ref_losses(head_cfg, head_cfg.get('train_cfg', cfg.model.train_cfg)),
        test_cfg=test_cfg,
        evaluators=_components(evaluators),
        parameters=sum(p.numel() for p in model.parameters()),
    )
    return _plain(fields)


def differences(ours: dict, ref: dict) -> Dict[str, str]:
    """field -> short description of how ours differs from the reference."""
    diffs = {}
    for key in ours:
        if ours[key] != ref[key]:
            if key == 'lr_and_decay_per_parameter':
                bad = sorted(n for n in set(ours[key]) | set(ref[key]) if ours[key].get(n) != ref[key].get(n))
                diffs[key] = f'{len(bad)} parameters, e.g. ' + ', '.join(
                    f'{n}: ours {ours[key].get(n)} ref {ref[key].get(n)}' for n in bad[:3])
            else:
                diffs[key] = f'ours {ours[key]!r}\n    ref  {ref[key]!r}'
    return diffs


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_recipe_matches_reference(name):
    lib, ref_name = PAIRS[name].split('/')
    ours = recipe(resolved(osp.join(REPO, 'configs', name)), ours=True)  # as a run resolves it (m2f_mm/config)
    ref = recipe(Config.fromfile(osp.join(MMDET if lib == 'mmdet' else MMSEG, ref_name)), ours=False)
    diffs = differences(ours, ref)
    report = '\n'.join(f'  {k}: {v}' for k, v in diffs.items())
    assert set(diffs) == set(ALLOWED[name]), f'{name} vs {lib} {ref_name}:\n{report}'


def test_every_reference_config_has_an_equivalent():
    refs = {f'mmdet/{osp.basename(p)}' for p in _list(MMDET)} | {f'mmseg/{osp.basename(p)}' for p in _list(MMSEG)}
    assert len(refs) == 24  # mmdet 3.3: 11, mmseg 1.2.2: 13
    assert refs == set(PAIRS.values())
    for name in PAIRS:
        assert osp.isfile(osp.join(REPO, 'configs', name))


def _list(folder: str) -> List[str]:
    import glob
    return glob.glob(osp.join(folder, '*.py'))
