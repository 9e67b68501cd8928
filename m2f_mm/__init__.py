"""m2f_mm: Mask2Former as an OpenMMLab plugin (mmdet 3.x panoptic/instance, mmseg 1.x semantic).

``import m2f_mm`` (or ``custom_imports=dict(imports=['m2f_mm'])`` in a config) registers every
component below, under ``M2F``-prefixed names, in both mmdet's and mmsegmentation's registries
(see ``m2f_mm/registry.py`` for why).
"""
from .utils.env import check_mmcv

check_mmcv()  # a broken mmcv fails here with the fix, not later inside a forward pass

from .utils.checkpoint_compat import install_checkpoint_loader  # noqa: E402

install_checkpoint_loader()  # torch >= 2.6 + mmengine 0.10 checkpoints, without disabling safe loading

# Every module that registers something, explicitly (order: building blocks first).
from .models import pixel_decoder, transformer_decoder  # noqa: E402,F401  M2FPixelDecoder, M2FTransformerDecoder
from .models import matching, losses  # noqa: E402,F401  M2FHungarianMatcher, M2FCriterion
from .models import inference  # noqa: E402,F401  M2FFusionHead
from .models import head, detector, seg_head  # noqa: E402,F401  M2FHead, M2FDetector(+hook), M2FSegHead
from .datasets import panoptic  # noqa: E402,F401  M2FLoadPanopticAnnotations, M2FCocoPanopticDataset
from .evaluation import metrics  # noqa: E402,F401  M2FCocoPanopticMetric, M2FSemSegMetric
from .utils import amp  # noqa: E402,F401  M2FAmpOptimWrapper

from .models.detector import M2FDetector  # noqa: E402
from .models.head import M2FHead  # noqa: E402
from .models.inference import M2FFusionHead  # noqa: E402
from .models.losses import M2FCriterion  # noqa: E402
from .models.matching import M2FHungarianMatcher  # noqa: E402
from .models.pixel_decoder import M2FPixelDecoder  # noqa: E402
from .models.seg_head import M2FSegHead  # noqa: E402
from .models.transformer_decoder import M2FTransformerDecoder  # noqa: E402

__version__ = '0.1.0'
__all__ = [
    'M2FDetector', 'M2FHead', 'M2FSegHead', 'M2FPixelDecoder', 'M2FTransformerDecoder', 'M2FHungarianMatcher',
    'M2FCriterion', 'M2FFusionHead', '__version__',
]
