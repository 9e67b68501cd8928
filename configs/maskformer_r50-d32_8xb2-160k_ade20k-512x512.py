# MaskFormer R50-D32 on ADE20K semantic segmentation, 512 crop, 160k iterations at 8 GPUs x 2 images
# (paper: 44.5 mIoU; mmseg 44.29). Reproduces mmseg 1.2.2's
# configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py with m2f_mm's MaskFormer head.
_base_ = ['_base_/runtime_seg.py', '_base_/datasets/ade20k_semantic_mmseg.py', '_base_/models/maskformer_r50_seg.py',
          '_base_/schedules/schedule_maskformer_160k_poly.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
