"""Where m2f_mm registers its components.

Every component has an ``M2F``-prefixed name and is registered in *both* mmdet's and
mmsegmentation's registries. Distinct names mean importing m2f_mm never changes what mmdet's or
mmseg's own configs build (``Mask2FormerHead`` stays mmdet's), and registering in both scopes means
a config with ``default_scope='mmdet'`` or ``default_scope='mmseg'`` builds them without a
``scope.`` prefix.
"""
from typing import Callable, Type, TypeVar

from mmdet.registry import DATASETS as DET_DATASETS
from mmdet.registry import METRICS as DET_METRICS
from mmdet.registry import MODELS as DET_MODELS
from mmdet.registry import TASK_UTILS as DET_TASK_UTILS
from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
from mmseg.registry import DATASETS as SEG_DATASETS
from mmseg.registry import METRICS as SEG_METRICS
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.registry import TASK_UTILS as SEG_TASK_UTILS
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS

T = TypeVar('T', bound=type)

# Sub-modules are built through mmdet's registries; the same names exist in mmseg's.
MODELS = DET_MODELS
TASK_UTILS = DET_TASK_UTILS
TRANSFORMS = DET_TRANSFORMS
METRICS = DET_METRICS
DATASETS = DET_DATASETS


def _register_in(*registries) -> Callable[[T], T]:
    def decorator(cls: T) -> T:
        for registry in registries:
            registry.register_module(module=cls)
        return cls
    return decorator


register_model = _register_in(DET_MODELS, SEG_MODELS)
register_task_util = _register_in(DET_TASK_UTILS, SEG_TASK_UTILS)
register_transform = _register_in(DET_TRANSFORMS, SEG_TRANSFORMS)
register_metric = _register_in(DET_METRICS, SEG_METRICS)
register_dataset = _register_in(DET_DATASETS, SEG_DATASETS)
# mmdet-only components (they take/return DetDataSample) go only where they make sense.
register_det_model = _register_in(DET_MODELS)
register_seg_model = _register_in(SEG_MODELS)
