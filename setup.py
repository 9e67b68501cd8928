"""m2f_mm: Mask2Former as an OpenMMLab plugin (mmdet 3.x + mmsegmentation 1.x)."""
from setuptools import find_packages, setup

# Version ranges verified together: torch 2.13.0 CPU, mmengine 0.10.7, mmcv 2.1.0 (built with ops),
# mmdet 3.3.0, mmsegmentation 1.2.2, numpy 2.4. mmdet 3.3 / mmseg 1.2 refuse mmcv >= 2.2.
# torch is pinned on purpose: an open range lets pip pull a multi-GB CUDA build on a CPU machine.
# Users with a CUDA torch install it first; pip then keeps it (2.x satisfies the range below).
INSTALL_REQUIRES = [
    'torch>=2.0,<2.14',
    # Both ends are real: torch 2.13 requires setuptools>=77.0.3, and mmengine 0.10 imports
    # pkg_resources (to find mmdet's / mmseg's configs), which setuptools 81 removed.
    'setuptools>=77.0.3,<81',
    'mmengine>=0.10.0,<1.0',
    'mmcv>=2.0.0rc4,<2.2.0',
    'mmdet>=3.1.0,<3.4.0',
    'mmsegmentation>=1.1.0,<1.3.0',
    'pycocotools',
    'scipy',
    'numpy',
    'ftfy',      # import mmseg.models needs it
    'regex',     # import mmseg.models needs it
    'matplotlib',
    'pillow',
    'ninja',     # builds m2f_mm/ops' CPU kernel on first use (torch.utils.cpp_extension)
]

setup(
    name='m2f_mm',
    version='0.3.0',
    description='Mask2Former for OpenMMLab: one implementation for panoptic, instance and semantic segmentation',
    long_description=open('README.md', encoding='utf-8').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['m2f_mm', 'm2f_mm.*']),
    python_requires='>=3.10',  # torch 2.13 needs Python >= 3.10
    package_data={'m2f_mm.ops': ['csrc/*.cpp']},  # compiled on first use, see m2f_mm/ops/_extension.py
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # pytest-xdist: make test runs the suite in 2 processes (most tests wait on tool subprocesses)
        'dev': ['pytest', 'pytest-timeout', 'pytest-xdist', 'torchmetrics', 'hypothesis'],
        # tools/analysis_tools/get_flops.py --backend fvcore (the counter the paper's FLOPs came from)
        'analysis': ['fvcore'],
        # m2f_mm.deploy, tools/deployment/: export to ONNX (torch.onnx.export(dynamo=False) needs no onnxscript), run
        'deploy': ['onnx', 'onnxruntime'],
    },
    license='Apache-2.0',
)
