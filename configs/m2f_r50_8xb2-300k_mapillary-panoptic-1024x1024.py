# Mask2Former R50 on Mapillary Vistas v1.2 panoptic segmentation, 1024 crop, 300k iterations, batch 16
# (paper: 36.3 PQ, 50.7 mIoU). The original's configs/mapillary-vistas/panoptic-segmentation/
# maskformer_R50_bs16_300k.yaml (a Mask2Former despite its name); neither mmdet nor mmseg has it. As there:
# panoptic and semantic outputs, no instance output, and object_mask_thr 0.0 (ADE20K / Cityscapes: 0.8).
# Data: docs/model_zoo.md (tools/dataset_converters/mapillary.py).
_base_ = ['_base_/models/m2f_r50.py', '_base_/datasets/mapillary_panoptic.py', '_base_/schedules/schedule_300k_poly.py',
          '_base_/runtime_det.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'
num_things_classes, num_stuff_classes = 37, 28
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=(1024, 1024), img_pad_value=0,
                                                pad_mask=True, mask_pad_value=0, pad_seg=True, seg_pad_value=255)]),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    test_cfg=dict(instance_on=False, object_mask_thr=0.0))
