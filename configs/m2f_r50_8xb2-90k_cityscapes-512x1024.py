# Mask2Former R50 on Cityscapes semantic segmentation, 512x1024 crop, 90k iterations (paper: 79.4
# mIoU; mmseg 80.44). Equivalent of mmseg 1.2.2's mask2former_r50_8xb2-90k_cityscapes-512x1024.py,
# except the crop's class-area limit (1.0 as in the original, mmseg 0.75).
_base_ = ['_base_/runtime_seg.py', '_base_/datasets/cityscapes_semantic.py', '_base_/models/m2f_r50_seg.py',
          '_base_/schedules/schedule_90k_poly.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
num_classes = 19
model = dict(data_preprocessor=dict(size=(512, 1024)), decode_head=dict(num_classes=num_classes))
