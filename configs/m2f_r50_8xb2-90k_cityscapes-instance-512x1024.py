# Mask2Former R50 on Cityscapes instance segmentation, 512x1024 crop, 90k iterations, batch 16 (paper:
# 37.4 AP). The original's configs/cityscapes/instance-segmentation/maskformer2_R50_bs16_90k.yaml,
# including its trainable SyncBN backbone. Data: docs/model_zoo.md (tools/dataset_converters/cityscapes.py).
_base_ = ['_base_/models/m2f_r50.py', '_base_/datasets/cityscapes_instance.py', '_base_/schedules/schedule_90k_poly.py',
          '_base_/runtime_det.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'
num_things_classes, num_stuff_classes = 8, 0
model = dict(
    data_preprocessor=dict(pad_seg=False),
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    test_cfg=dict(panoptic_on=False, instance_on=True, semantic_on=False))
