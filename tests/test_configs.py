"""Every leaf config loads and builds its model (catches broken inheritance and renamed arguments)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import m2f_mm  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
LEAF_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '*.py')))


def test_there_are_leaf_configs():
    assert len(LEAF_CONFIGS) >= 4


@pytest.mark.parametrize('path', LEAF_CONFIGS, ids=osp.basename)
def test_leaf_config_builds_model(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['m2f_mm']
    scope = cfg.default_scope
    init_default_scope(scope)
    cfg.model.backbone.init_cfg = None
    cfg.model.pop('pretrained', None)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(cfg.model)
    head = model.panoptic_head if scope == 'mmdet' else model.decode_head
    assert type(head).__module__.startswith('m2f_mm.')
    # class counts agree between the head, its criterion config and the fusion head
    criterion_classes = cfg.model.get('panoptic_head', cfg.model.get('decode_head'))['criterion']['num_classes']
    assert head.num_classes == criterion_classes
    if scope == 'mmdet':
        assert model.panoptic_fusion_head.num_classes == head.num_classes
