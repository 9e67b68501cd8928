from .env import M2FEnvironmentError, check_environment, check_mmcv, check_pkg_resources, missing_packages

__all__ = ['M2FEnvironmentError', 'check_environment', 'check_mmcv', 'check_pkg_resources', 'missing_packages']
