# Mask2Former R50 on Cityscapes panoptic segmentation, 512x1024 crop, 90k iterations, batch 16 (paper:
# 62.1 PQ). The original's configs/cityscapes/panoptic-segmentation/maskformer2_R50_bs16_90k.yaml,
# including its trainable SyncBN backbone; neither mmdet nor mmseg has it. Data: docs/model_zoo.md
# (tools/dataset_converters/cityscapes.py).
_base_ = ['_base_/models/m2f_r50.py', '_base_/datasets/cityscapes_panoptic.py', '_base_/schedules/schedule_90k_poly.py',
          '_base_/runtime_det.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'
num_things_classes, num_stuff_classes = 8, 11
model = dict(
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes))
