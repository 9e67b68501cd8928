"""Fail before training when a ``Pretrained`` init_cfg points at a local file that is not there.

mmengine reports such a file only when it loads it (``FileNotFoundError: x.pth can not be found``),
without saying which config option holds the path. ``M2FPretrainedCheckHook`` (``before_run``, so
before the runner initialises the weights) names the option and the ways out. URLs and mmengine's
prefixes (``torchvision://``, ``open-mmlab://`` ...) are left to mmengine: they are downloaded.
"""
import os.path as osp
from typing import List, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from ...registry import register_hook


def missing_pretrained_files(model: nn.Module) -> List[Tuple[str, str]]:
    """-> (config option, path) of every module whose ``init_cfg`` is a ``Pretrained`` local file that
    does not exist, e.g. ``('model.backbone.init_cfg.checkpoint', 'swin_large.pth')``."""
    missing = []
    for name, module in model.named_modules():
        cfgs = getattr(module, 'init_cfg', None)
        for cfg in cfgs if isinstance(cfgs, list) else [cfgs]:
            if not isinstance(cfg, dict) or cfg.get('type') != 'Pretrained':
                continue
            path = cfg.get('checkpoint')
            if isinstance(path, str) and '://' not in path and not osp.isfile(osp.expanduser(path)):
                missing.append((f"model.{name + '.' if name else ''}init_cfg.checkpoint", path))
    return missing


@register_hook
class M2FPretrainedCheckHook(Hook):
    """Raises FileNotFoundError naming the option of each missing pretrained file (module docstring)."""

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        missing = missing_pretrained_files(model)
        if missing:
            lines = '\n'.join(f'  {option} = {path!r}' for option, path in missing)
            option = missing[0][0]
            raise FileNotFoundError(
                f'pretrained weights not found:\n{lines}\nDownload them (the config names the URL of the '
                f'official file) and pass the path with --cfg-options {option}=PATH, or train from scratch with '
                f"--cfg-options {option.rsplit('.', 1)[0]}=None")
