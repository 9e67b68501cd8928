"""A config pointing at a missing local pretrained file fails before training, naming the option."""
import os.path as osp
import sys
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.registry import HOOKS, DefaultScope

from m2f_mm.engine.hooks.pretrained_check import M2FPretrainedCheckHook, missing_pretrained_files

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs'))  # zoo_build (importlib import mode)
from zoo_build import LEAF_CONFIGS, REPO, resolved, skip_weight_init  # noqa: E402


def _swin_l(checkpoint: str):
    cfg = resolved(osp.join(REPO, 'configs', 'm2f_swin-l_coco-panoptic.py'))
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    from mmdet.registry import MODELS
    with skip_weight_init(), DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model)


def test_missing_swin_checkpoint_names_the_option(tmp_path):
    missing = str(tmp_path / 'swin_large_patch4_window12_384_22k.pth')
    model = _swin_l(missing)
    assert missing_pretrained_files(model) == [('model.backbone.init_cfg.checkpoint', missing)]
    with pytest.raises(FileNotFoundError, match=r'(?s)model\.backbone\.init_cfg\.checkpoint = .*swin_large.*'
                                                r'--cfg-options model\.backbone\.init_cfg\.checkpoint=PATH.*'
                                                r'--cfg-options model\.backbone\.init_cfg=None'):
        M2FPretrainedCheckHook().before_run(SimpleNamespace(model=model))


@pytest.mark.slow
def test_existing_files_and_urls_pass(tmp_path):
    present = tmp_path / 'swin.pth'
    present.write_bytes(b'')
    for checkpoint in (str(present), 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/x.pth',
                       'torchvision://resnet50'):
        model = _swin_l(checkpoint)
        assert missing_pretrained_files(model) == []
        M2FPretrainedCheckHook().before_run(SimpleNamespace(model=model))


@pytest.mark.parametrize('path', LEAF_CONFIGS, ids=osp.basename)
def test_configs_with_pretrained_weights_run_the_check(path):
    cfg = Config.fromfile(path)
    if not (cfg.model.backbone.get('init_cfg') or {}).get('type') == 'Pretrained':
        return
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert 'M2FPretrainedCheckHook' in hooks
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        assert isinstance(HOOKS.build(dict(type='M2FPretrainedCheckHook')), M2FPretrainedCheckHook)
