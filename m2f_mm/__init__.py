"""m2f_mm: Mask2Former as an OpenMMLab plugin (mmdet 3.x panoptic/instance, mmseg 1.x semantic)."""
from .utils.env import check_mmcv

check_mmcv()  # a broken mmcv fails here with the fix, not later inside a forward pass

__version__ = '0.1.0'
