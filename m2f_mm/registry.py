"""Where m2f_mm registers its components.

Every component has an ``M2F``-prefixed name and is registered in *both* mmdet's and
mmsegmentation's registries. Distinct names mean importing m2f_mm never changes what mmdet's or
mmseg's own configs build (``Mask2FormerHead`` stays mmdet's), and registering in both scopes means
a config with ``default_scope='mmdet'`` or ``default_scope='mmseg'`` builds them without a
``scope.`` prefix. Hooks and the runner go into mmengine's root registries, which both scopes
search. This is the one module that calls ``register_module``; :data:`REGISTERED` lists what it
registered, so a test can check that nothing else does.
"""
from typing import Callable, List, Tuple, TypeVar

from mmdet.registry import DATASETS as DET_DATASETS
from mmdet.registry import HOOKS as DET_HOOKS
from mmdet.registry import METRICS as DET_METRICS
from mmdet.registry import MODELS as DET_MODELS
from mmdet.registry import OPTIM_WRAPPERS as DET_OPTIM_WRAPPERS
from mmdet.registry import TASK_UTILS as DET_TASK_UTILS
from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
from mmdet.registry import VISUALIZERS as DET_VISUALIZERS
from mmengine.registry import HOOKS, RUNNERS, Registry
from mmseg.registry import DATASETS as SEG_DATASETS
from mmseg.registry import METRICS as SEG_METRICS
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.registry import OPTIM_WRAPPERS as SEG_OPTIM_WRAPPERS
from mmseg.registry import TASK_UTILS as SEG_TASK_UTILS
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS

T = TypeVar('T', bound=type)

# Sub-modules are built through mmdet's registries; the same names exist in mmseg's.
MODELS = DET_MODELS
TASK_UTILS = DET_TASK_UTILS
TRANSFORMS = DET_TRANSFORMS
METRICS = DET_METRICS
DATASETS = DET_DATASETS

# (registry, name, class) of every registration made here, in order.
REGISTERED: List[Tuple[Registry, str, type]] = []


def _register_in(*registries) -> Callable[[T], T]:
    def decorator(cls: T) -> T:
        for registry in registries:
            registry.register_module(module=cls)
            REGISTERED.append((registry, cls.__name__, cls))
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
# mmengine's root registries: a hook or runner there is found from the mmdet and the mmseg scope alike.
register_hook = _register_in(HOOKS)
register_runner = _register_in(RUNNERS)
# Only in mmdet's: the class check is a det config's custom hook (M2FRunner adds it to every run itself),
# the visualizer draws DetDataSamples.
register_det_hook = _register_in(DET_HOOKS)
register_visualizer = _register_in(DET_VISUALIZERS)
register_optim_wrapper = _register_in(DET_OPTIM_WRAPPERS, SEG_OPTIM_WRAPPERS)
