"""Shared by the config tests: the list of configs, and building a config's model without weights.

Weights are neither initialised nor loaded: torch's in-place init functions are no-ops while a model
is built (so building Swin-L takes ~0.1 s, not ~3 s) and ``init_weights`` is never called, so no
``Pretrained`` checkpoint is downloaded.
"""
import contextlib
import copy
import functools
import glob
import os.path as osp
import re
from typing import Tuple
from unittest import mock

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import m2f_mm  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LEAF_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '*.py')))
_INIT_FNS = ('kaiming_uniform_', 'kaiming_normal_', 'uniform_', 'normal_', 'trunc_normal_', 'xavier_uniform_',
             'xavier_normal_', 'constant_', 'zeros_', 'ones_')

# millions of parameters of the paper's model (COCO panoptic head, 133 classes, 100 queries)
FAMILY_PARAMS_M = {'r50': 44.04, 'r101': 63.03, 'swin-t': 47.44, 'swin-s': 68.75, 'swin-b': 106.92,
                   'swin-l': 215.48, 'r18-q24': 1.28,
                   # MaskFormer: mmdet's / mmseg's model of each recipe (its dataset's classes, 100 queries;
                   # tests/parity/test_maskformer_recipes.py checks them against OpenMMLab's and the paper's)
                   'maskformer_r50': 45.07, 'maskformer_swin-l': 211.57, 'maskformer_r50-d32': 41.31,
                   'maskformer_r101-d32': 60.30, 'maskformer_swin-t': 41.76, 'maskformer_swin-s': 63.07,
                   'maskformer_r18-q24': 1.42}
# (queries, classes) of each dataset / task, as in the reference configs
DATASET_COUNTS = {'coco-panoptic': 133, 'coco': 80, 'ade20k': 150, 'cityscapes': 19, 'synthetic-panoptic': 7,
                  'synthetic-semantic': 7, 'synthetic-instance': 4,
                  'ade20k-panoptic': 150, 'ade20k-instance': 100, 'cityscapes-panoptic': 19,
                  'cityscapes-instance': 8, 'mapillary': 65, 'mapillary-panoptic': 65}


def expected_shape(name: str) -> Tuple[str, int, int]:
    """Config file name -> (backbone family, queries, classes), from the OpenMMLab naming.

    MaskFormer configs (``maskformer_``) are families of their own, one per OpenMMLab backbone name: mmdet's
    R50 has a transformer encoder in its pixel decoder, mmseg's R50-D32 none."""
    model, backbone = re.match(r'(m2f|maskformer)_(r50-d32|r101-d32|r50|r101|r18-q24|swin-[tsbl])', name).groups()
    family = backbone if model == 'm2f' else f'{model}_{backbone}'
    dataset = re.search(r'_(coco-panoptic|coco|ade20k-panoptic|ade20k-instance|ade20k|cityscapes-panoptic|'
                        r'cityscapes-instance|cityscapes|mapillary-panoptic|mapillary|synthetic-panoptic|'
                        r'synthetic-semantic|synthetic-instance)(-\d+x\d+)?\.py$', name).group(1)
    # Swin-L: 200 queries, except the semantic models (100), as in the original's configs
    # (MaskFormer's Swin-L: 100, as mmdet's)
    queries = 24 if backbone == 'r18-q24' else 200 if family == 'swin-l' and not re.search(
        r'_(ade20k|cityscapes|mapillary)-\d', name) else 100
    return family, queries, DATASET_COUNTS[dataset]


@contextlib.contextmanager
def skip_weight_init():
    """Build modules with uninitialised (torch.empty) weights: shapes only, no random fill."""
    with contextlib.ExitStack() as stack:
        for fn in _INIT_FNS:
            stack.enter_context(mock.patch.object(torch.nn.init, fn, lambda tensor, *args, **kwargs: tensor))
        yield


def build_model(cfg: Config) -> torch.nn.Module:
    """cfg.model built in cfg.default_scope, without initialising or loading weights."""
    scope = cfg.default_scope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None  # belt and braces: init_weights is not called either
    model_cfg.pop('pretrained', None)
    with skip_weight_init(), DefaultScope.overwrite_default_scope(scope):
        return registry.build(model_cfg)


def resolved(path: str) -> Config:
    """The config as a run sees it (m2f_mm.config.resolve_config): class counts from the data, which is not on
    this machine, so from the datasets' METAINFO; the synthetic semantic config, whose label PNGs carry no names,
    gets the synthetic classes as a checkpoint trained on that data would give them."""
    from m2f_mm.config import resolve_config
    from m2f_mm.datasets.synthetic_dataset import SYNTHETIC_METAINFO
    cfg = Config.fromfile(path)
    meta = SYNTHETIC_METAINFO if osp.basename(path).endswith('synthetic-semantic.py') else None
    resolve_config(cfg, 'train' if meta is None else 'inference', dataset_meta=meta)
    return cfg


@functools.lru_cache(maxsize=None)
def built(path: str) -> Tuple[int, int, int, str]:
    """-> (parameters, queries, classes, head module path) of the config's model."""
    cfg = resolved(path)
    assert cfg.custom_imports['imports'] == ['m2f_mm']
    model = build_model(cfg)
    head = model.panoptic_head if cfg.default_scope == 'mmdet' else model.decode_head
    # class counts agree between the head, its criterion and the fusion head (per-pixel heads have no criterion)
    if getattr(head, 'criterion_cfg', None) is not None:
        assert head.criterion.num_classes == head.num_classes
    if cfg.default_scope == 'mmdet':
        assert model.panoptic_fusion_head.num_classes == head.num_classes
    return (sum(p.numel() for p in model.parameters()), getattr(head, 'num_queries', None), head.num_classes,
            type(head).__module__)


# MaskFormer's semantic baselines and its fixed-matching ablation: (millions of parameters, queries, classes).
# Not a backbone family of the table above: test_build.py checks them against each other instead.
BASELINE_SHAPES = {
    'perpixel_r50-d32_8xb2-160k_ade20k-512x512.py': (31.09, None, 150),
    'perpixel-plus_r50-d32_8xb2-160k_ade20k-512x512.py': (41.28, 150, 150),
    'maskformer_r50-d32-fixed-matching_8xb2-160k_ade20k-512x512.py': (41.32, 150, 150),
}
BASELINE_CONFIGS = [p for p in LEAF_CONFIGS if osp.basename(p) in BASELINE_SHAPES]
MODEL_CONFIGS = [p for p in LEAF_CONFIGS if p not in BASELINE_CONFIGS]
