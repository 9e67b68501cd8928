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
from zoo_build import (BASELINE_CONFIGS, BASELINE_SHAPES, FAMILY_PARAMS_M, LEAF_CONFIGS,  # noqa: E402
                        MODEL_CONFIGS, REPO, built, expected_shape)


def test_there_are_leaf_configs():
    assert len(LEAF_CONFIGS) >= 26
    assert osp.join(REPO, 'configs', 'm2f_swin-l_coco-panoptic.py') in LEAF_CONFIGS


@pytest.mark.parametrize('path', MODEL_CONFIGS, ids=osp.basename)
def test_leaf_config_builds_model(path):
    params, queries, classes, head_module = built(path)
    assert head_module.startswith('m2f_mm.')
    assert head_module.endswith('.maskformer_head') == osp.basename(path).startswith('maskformer_')
    family, want_queries, want_classes = expected_shape(osp.basename(path))
    assert (queries, classes) == (want_queries, want_classes)
    assert params / 1e6 == pytest.approx(FAMILY_PARAMS_M[family], rel=0.005)
    # exact: same backbone and head as the family's first config, up to class rows and query embeddings
    anchor = next(p for p in MODEL_CONFIGS if expected_shape(osp.basename(p))[0] == family)
    a_params, a_queries, a_classes, _ = built(anchor)
    width = 64 if family.endswith('r18-q24') else 256  # the transformer width: a class row is width + 1
    assert params - a_params == (classes - a_classes) * (width + 1) + (queries - a_queries) * 2 * width


def test_short_swin_l_name_is_the_full_recipe():
    short = Config.fromfile(osp.join(REPO, 'configs', 'm2f_swin-l_coco-panoptic.py'))
    full = Config.fromfile(osp.join(REPO, 'configs', 'm2f_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py'))
    assert short.to_dict() == full.to_dict()
    assert short.model.panoptic_head.num_queries == 200 and short.train_cfg.max_iters == 737500
    assert short.train_dataloader.batch_size == 1  # x 16 GPUs
    assert short.model.backbone.window_size == 12 and short.model.backbone.pretrain_img_size == 384
    assert '22k' in short.model.backbone.init_cfg.checkpoint


@pytest.mark.parametrize('path', BASELINE_CONFIGS, ids=osp.basename)
def test_baseline_config_builds_model(path):
    """MaskFormer's semantic baselines (per-pixel, per-pixel+) and fixed-matching MaskFormer: one query per
    class where there are queries, and each model is the next one up to its difference."""
    params, queries, classes, head_module = built(path)
    assert head_module.startswith('m2f_mm.')
    want_params, want_queries, want_classes = BASELINE_SHAPES[osp.basename(path)]
    assert (queries, classes) == (want_queries, want_classes)
    assert params / 1e6 == pytest.approx(want_params, rel=0.001)


def test_baselines_differ_exactly_by_their_heads():
    by_name = {osp.basename(p).split('_')[0]: built(p)[0] for p in BASELINE_CONFIGS}
    assert set(by_name) == {'perpixel', 'perpixel-plus', 'maskformer'}
    # per-pixel+ = MaskFormer (150 queries) without its class head (256 -> 151)
    assert by_name['maskformer'] - by_name['perpixel-plus'] == 256 * 151 + 151
    # per-pixel = per-pixel+ with a 1x1 classifier (256 -> 150) instead of the transformer module: the
    # 2048 -> 256 input projection, 150 query positions, 6 decoder layers (self-attention, cross-attention,
    # FFN 256 -> 2048 -> 256, three norms) and the shared final norm, and the 3-layer mask-embedding MLP
    attention = 4 * 256 * 256 + 4 * 256
    layer = 2 * attention + (256 * 2048 + 2048) + (2048 * 256 + 256) + 3 * 2 * 256
    transformer = (2048 * 256 + 256) + 150 * 256 + 6 * layer + 2 * 256 + 3 * (256 * 256 + 256)
    assert by_name['perpixel-plus'] - by_name['perpixel'] == transformer - (256 * 150 + 150)
