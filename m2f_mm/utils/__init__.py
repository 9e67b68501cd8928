from .env import M2FEnvironmentError, check_mmcv

__all__ = ['M2FEnvironmentError', 'check_mmcv']
