# Mask2Former R50 on ADE20K semantic segmentation, 512 crop, 160k iterations (paper: 47.2 mIoU;
# mmseg 47.87). Equivalent of mmseg 1.2.2's mask2former_r50_8xb2-160k_ade20k-512x512.py, except the
# crop's class-area limit (1.0 as in the original, mmseg 0.75; see _base_/datasets/ade20k_semantic.py).
_base_ = ['_base_/runtime_seg.py', '_base_/datasets/ade20k_semantic.py', '_base_/models/m2f_r50_seg.py',
          '_base_/schedules/schedule_160k_poly.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
