"""``M2FClassCheckHook``: fail before the first step when the dataset's class counts differ from the model's.

mmdet models are checked through ``check_dataset_meta(metainfo)`` (``M2FDetector`` has it: thing /
stuff counts), mmseg models through their decode head's ``num_classes``. ``M2FRunner`` adds the hook
to every run; det configs also name it (mmdet HOOKS): ``custom_hooks=[dict(type='M2FClassCheckHook')]``.
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ...errors import M2FConfigError
from ...registry import register_det_hook


@register_det_hook
class M2FClassCheckHook(Hook):
    """Fails fast when the dataset's class counts do not match the model's (see the module docstring)."""

    priority = 'VERY_HIGH'

    @staticmethod
    def _check(runner, loader_name: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loader = getattr(runner, loader_name, None)
        metainfo = getattr(getattr(loader, 'dataset', None), 'metainfo', None)
        if hasattr(model, 'check_dataset_meta'):
            model.check_dataset_meta(metainfo)
            return
        head = getattr(model, 'decode_head', None)
        classes = (metainfo or {}).get('classes')
        if head is not None and hasattr(head, 'num_classes') and classes is not None \
                and len(classes) != head.num_classes:
            raise M2FConfigError(f'class-count mismatch: model.decode_head.num_classes={head.num_classes}, the dataset '
                                 f'has {len(classes)} classes; set model.decode_head.num_classes={len(classes)}')

    def before_train(self, runner) -> None:
        self._check(runner, 'train_dataloader')

    def before_val(self, runner) -> None:
        self._check(runner, 'val_dataloader')

    def before_test(self, runner) -> None:
        self._check(runner, 'test_dataloader')
