"""Deployment: export to ONNX or a ``torch.export`` program (:mod:`.export`) and run with onnxruntime
(:mod:`.runtime`).

Needs the ``deploy`` extra (``pip install -e '.[deploy]'``: onnx, onnxruntime); without it,
importing this package works and the first call that needs a missing package says which extra to install.
docs/deployment.md has the commands.
"""
from ._deps import MissingDeployExtra
from .export import LogitsNet, export_onnx, export_program, spec_path, verify
from .runtime import OnnxModel, inference_onnx

__all__ = ['export_onnx', 'export_program', 'verify', 'spec_path', 'LogitsNet', 'OnnxModel', 'inference_onnx', 'MissingDeployExtra']
