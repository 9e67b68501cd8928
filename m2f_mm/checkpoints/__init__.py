"""Checkpoints: loading them into a model, reading files safely, and converting OpenMMLab and detectron2
Mask2Former weights.

- ``loading.py``: :func:`load_into` (read, check against the model, load, log what did not fit),
  :func:`load_checkpoint_file` (one line for a file that cannot be read) and the fit report; what
  ``M2FRunner`` and ``init_model`` load with.
- ``safe_load.py``: the restricted unpickler every loader in m2f_mm uses (no code runs while loading).
- ``safe_types.py``: what the runner stores besides tensors, in types ``torch.load(weights_only=True)`` reads.
- ``rename.py``: the one key-rename engine (template tables, both directions) and the model's head prefixes.
- ``mmdet.py``: mmdet 3.x / mmseg 1.x Mask2Former -> m2f_mm (``tools/model_converters/mmdet_to_m2f.py``).
- ``d2_keys.py`` + ``d2.py``: facebookresearch/Mask2Former and facebookresearch/MaskFormer (detectron2)
  -> m2f_mm and back (``tools/model_converters/d2_to_m2f.py``).
- ``class_order.py``: the class rows of a converted classifier, from a dataset's file order to things first.
"""
from .class_order import categories_of, reorder_class_rows, things_first_order
from .d2 import (CheckpointFormatError, CheckpointMismatchError, ConversionResult, backbone_name,
                 convert_d2_checkpoint, d2_head_summary, d2_model_kind, extract_d2_weights, load_d2_checkpoint,
                 maskformer_head_settings, to_d2_layout)
from .loading import LoadReport, fitting_state, load_checkpoint_file, load_into
from .mmdet import MMDET_TABLE, convert_mmdet_to_m2f, detect_layout, state_dict_prefixes
from .rename import HEAD_PREFIXES
from .safe_load import install_checkpoint_loader, load_local_checkpoint, load_pickle, safe_local_loading

__all__ = [
    'MMDET_TABLE', 'convert_mmdet_to_m2f', 'detect_layout', 'state_dict_prefixes', 'CheckpointFormatError',
    'CheckpointMismatchError', 'ConversionResult', 'backbone_name', 'convert_d2_checkpoint', 'd2_head_summary',
    'd2_model_kind', 'maskformer_head_settings',
    'extract_d2_weights', 'load_d2_checkpoint', 'to_d2_layout', 'install_checkpoint_loader', 'load_checkpoint_file',
    'load_local_checkpoint', 'load_pickle', 'safe_local_loading', 'categories_of', 'reorder_class_rows',
    'things_first_order', 'HEAD_PREFIXES', 'LoadReport', 'fitting_state', 'load_into'
]
