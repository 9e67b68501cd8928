"""Optimizer wrappers (mmdet + mmseg OPTIM_WRAPPERS): ``M2FAmpOptimWrapper``, mixed precision on any device."""
from .amp import M2FAmpOptimWrapper

__all__ = ['M2FAmpOptimWrapper']
