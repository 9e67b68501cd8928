"""m2f_mm: Mask2Former as an OpenMMLab plugin (mmdet 3.x panoptic/instance, mmseg 1.x semantic).

``import m2f_mm`` (or ``custom_imports=dict(imports=['m2f_mm'])`` in a config) registers every
component below, under ``M2F``-prefixed names, in both mmdet's and mmsegmentation's registries
(see ``m2f_mm/registry.py`` for why). Importing changes nothing else: safe checkpoint loading is
something ``M2FRunner`` and the inference entry points opt into.

Without any of the OpenMMLab stack (torch, mmengine, mmcv, mmdet, mmseg) installed, the numpy-only
parts still import (``m2f_mm.evaluation.pq``, ``m2f_mm.structures.panoptic_format``); there is nothing to
register then, and the model classes raise the environment error naming what to install.
"""
from .utils.env import OPENMMLAB_STACK, M2FEnvironmentError, check_mmcv, missing_packages

__version__ = '0.3.0'
_NUMPY_ONLY = len(missing_packages()) == len(OPENMMLAB_STACK)

if not _NUMPY_ONLY:
    check_mmcv()  # a broken mmcv fails here with the fix, not later inside a forward pass

    # Every module that registers something, explicitly (order: building blocks first).
    from .models import pixel_decoder, transformer_decoder  # noqa: F401  M2FPixelDecoder, M2FTransformerDecoder
    from .models import fpn_pixel_decoder  # noqa: F401  M2FFPNPixelDecoder (the pixel-decoder ablation)
    from .models import semantic_fpn_pixel_decoder  # noqa: F401  M2FSemanticFPNPixelDecoder (the same ablation)
    from .models import matching, criterion  # noqa: F401  M2FHungarianMatcher, M2FCriterion
    from .models import fixed_matching  # noqa: F401  M2FFixedMatcher (MaskFormer's matching ablation)
    from .models import fusion  # noqa: F401  M2FFusionHead
    from .models import head, detector, seg_head  # noqa: F401  M2FHead, M2FDetector, M2FSegHead
    from .models import detr_decoder, maskformer_pixel_decoder  # noqa: F401  M2FDETR*, M2FMaskFormerPixelDecoder
    from .models import maskformer_head  # noqa: F401  M2FMaskFormerHead, M2FMaskFormerSegHead (MaskFormer)
    from .models import per_pixel_head  # noqa: F401  M2FPerPixelHead, M2FPerPixelPlusHead (MaskFormer's baselines)
    from .datasets import panoptic  # noqa: F401  M2FLoadPanopticAnnotations, M2FCocoPanopticDataset
    from .datasets import coco_format  # noqa: F401  M2F(Cityscapes)PanopticDataset, M2FInstanceDataset
    from .datasets import synthetic_dataset  # noqa: F401  M2FSynthetic{Panoptic,Instance}Dataset
    from .datasets import semantic  # noqa: F401  M2FLoadSegAnnotations
    from .evaluation import metrics  # noqa: F401  M2FCocoPanopticMetric, M2FSemSegMetric
    from . import engine  # noqa: F401  M2FRunner, the hooks (engine/hooks/), M2FAmpOptimWrapper (engine/optim/)
    from .visualization import visualizer  # noqa: F401  M2FDetLocalVisualizer

    from .engine import M2FRunner
    from .models.detector import M2FDetector
    from .models.head import M2FHead
    from .models.fusion import M2FFusionHead
    from .models.criterion import M2FCriterion
    from .models.matching import M2FHungarianMatcher
    from .models.pixel_decoder import M2FPixelDecoder
    from .models.seg_head import M2FSegHead
    from .models.maskformer_head import M2FMaskFormerHead, M2FMaskFormerSegHead
    from .models.maskformer_pixel_decoder import M2FMaskFormerPixelDecoder
    from .models.detr_decoder import M2FDETRDecoder
    from .models.transformer_decoder import M2FTransformerDecoder

__all__ = [
    'M2FDetector', 'M2FHead', 'M2FSegHead', 'M2FPixelDecoder', 'M2FTransformerDecoder', 'M2FHungarianMatcher',
    'M2FCriterion', 'M2FFusionHead', 'M2FRunner', 'M2FMaskFormerHead', 'M2FMaskFormerSegHead',
    'M2FMaskFormerPixelDecoder', 'M2FDETRDecoder', '__version__',
]


def __getattr__(name: str):
    if _NUMPY_ONLY and name in __all__:
        raise M2FEnvironmentError(f'm2f_mm.{name} needs the OpenMMLab stack, and none of {", ".join(OPENMMLAB_STACK)} '
                                  'is installed. Fix: `bash tools/setup_env.sh` (or see README, Installation).')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
