# Mask2Former R50 on COCO instance segmentation, LSJ 1024, 50 epochs (paper: 43.7 mask AP; mmdet 42.9).
# Official weights: see docs/official_checkpoints.md (tools/model_converters/d2_to_m2f.py).
_base_ = ['_base_/models/m2f_r50.py', '_base_/datasets/coco_instance_lsj.py', '_base_/schedules/schedule_50e.py',
          'mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

num_things_classes, num_stuff_classes = 80, 0
batch_augments = [dict(type='BatchFixedSizePad', size=(1024, 1024), img_pad_value=0, pad_mask=True, mask_pad_value=0,
                       pad_seg=False)]
model = dict(
    data_preprocessor=dict(pad_seg=False, batch_augments=batch_augments),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes,
                       criterion=dict(num_classes=num_things_classes + num_stuff_classes)),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    test_cfg=dict(panoptic_on=False, instance_on=True, semantic_on=False))

custom_hooks = [dict(type='M2FClassCheckHook')]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, save_last=True, max_keep_ckpts=3, interval=5000))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

# An all-VOID panoptic map (e.g. an undertrained model) draws as the image instead of crashing mmdet's visualizer.
visualizer = dict(type='M2FDetLocalVisualizer')
