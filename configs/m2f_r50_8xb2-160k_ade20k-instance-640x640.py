# Mask2Former R50 on ADE20K instance segmentation, 640 crop, 160k iterations, batch 16 (paper: 26.4 AP).
# The original's configs/ade20k/instance-segmentation/maskformer2_R50_bs16_160k.yaml; neither mmdet nor
# mmseg has it. Data: docs/model_zoo.md (tools/dataset_converters/ade20k.py).
_base_ = ['_base_/models/m2f_r50.py', '_base_/datasets/ade20k_instance.py', '_base_/schedules/schedule_160k_poly.py',
          '_base_/runtime_det.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'
num_things_classes, num_stuff_classes = 100, 0
model = dict(
    data_preprocessor=dict(pad_seg=False, batch_augments=[dict(type='BatchFixedSizePad', size=(640, 640),
                                                               img_pad_value=0, pad_mask=True, mask_pad_value=0)]),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    test_cfg=dict(panoptic_on=False, instance_on=True, semantic_on=False))
