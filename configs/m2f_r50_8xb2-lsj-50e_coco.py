# Mask2Former R50 on COCO instance segmentation, LSJ 1024, 50 epochs (paper: 43.7 mask AP; mmdet 42.9).
# Official weights: see docs/official_checkpoints.md (tools/model_converters/d2_to_m2f.py).
_base_ = ['_base_/models/m2f_r50.py', '_base_/datasets/coco_instance_lsj.py', '_base_/schedules/schedule_50e.py',
          '_base_/runtime_det.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

num_things_classes, num_stuff_classes = 80, 0
batch_augments = [dict(type='BatchFixedSizePad', size=(1024, 1024), img_pad_value=0, pad_mask=True, mask_pad_value=0,
                       pad_seg=False)]
model = dict(
    data_preprocessor=dict(pad_seg=False, batch_augments=batch_augments),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    test_cfg=dict(panoptic_on=False, instance_on=True, semantic_on=False))
