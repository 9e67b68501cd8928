"""Every config under configs/ loads and builds its model on CPU, with the expected size, queries and classes.

Parameter counts are checked two ways: against the backbone family's known size (R50 ~44.0M,
R101 ~63.0M, Swin-L ~215.5M ...), and exactly against the family's first config corrected for the
head's shape: each class adds a class-embedding row (257 weights) and each query a feature and a
position embedding (2 x 256). MaskFormer configs are families of their own (one config each; their counts
equal mmdet's / mmseg's models, tests/parity/test_maskformer_recipes.py). Models are built without
weights (zoo_build.py).
"""
import os.path as osp
import sys

import pytest
from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # the helpers beside this file (importlib import mode)
from zoo_build import FAMILY_PARAMS_M, LEAF_CONFIGS, REPO, built, expected_shape  # noqa: E402


def test_there_are_leaf_configs():
    assert len(LEAF_CONFIGS) >= 26
    assert osp.join(REPO, 'configs', 'm2f_swin-l_coco-panoptic.py') in LEAF_CONFIGS


@pytest.mark.parametrize('path', LEAF_CONFIGS, ids=osp.basename)
def test_leaf_config_builds_model(path):
    params, queries, classes, head_module = built(path)
    assert head_module.startswith('m2f_mm.')
    assert head_module.endswith('.maskformer_head') == osp.basename(path).startswith('maskformer_')
    family, want_queries, want_classes = expected_shape(osp.basename(path))
    assert (queries, classes) == (want_queries, want_classes)
    assert params / 1e6 == pytest.approx(FAMILY_PARAMS_M[family], rel=0.005)
    # exact: same backbone and head as the family's first config, up to class rows and query embeddings
    anchor = next(p for p in LEAF_CONFIGS if expected_shape(osp.basename(p))[0] == family)
    a_params, a_queries, a_classes, _ = built(anchor)
    assert params - a_params == (classes - a_classes) * 257 + (queries - a_queries) * 2 * 256


def test_short_swin_l_name_is_the_full_recipe():
    short = Config.fromfile(osp.join(REPO, 'configs', 'm2f_swin-l_coco-panoptic.py'))
    full = Config.fromfile(osp.join(REPO, 'configs', 'm2f_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py'))
    assert short.to_dict() == full.to_dict()
    assert short.model.panoptic_head.num_queries == 200 and short.train_cfg.max_iters == 737500
    assert short.train_dataloader.batch_size == 1  # x 16 GPUs
    assert short.model.backbone.window_size == 12 and short.model.backbone.pretrain_img_size == 384
    assert '22k' in short.model.backbone.init_cfg.checkpoint
