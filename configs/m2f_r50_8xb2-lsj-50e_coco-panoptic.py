# Mask2Former R50 on COCO panoptic, LSJ 1024, 50 epochs (paper: 51.9 PQ; mmdet's reproduction 52.0).
_base_ = [
    '_base_/models/m2f_r50.py',
    '_base_/datasets/coco_panoptic.py',
    '_base_/schedules/schedule_50e.py',
    'mmdet::_base_/default_runtime.py',  # hooks, env, visualizer, logging (mmdet 3.3's)
]
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

image_size = (1024, 1024)
# LSJ: every batch padded to 1024x1024 (masks with 0, semantic maps with 255 = ignore).
batch_augments = [
    dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True, mask_pad_value=0,
         pad_seg=True, seg_pad_value=255)
]
model = dict(data_preprocessor=dict(batch_augments=batch_augments))

# Fail before the first step if the dataset's thing/stuff counts differ from the model's.
custom_hooks = [dict(type='M2FClassCheckHook')]

# iteration-based schedule (_base_/schedules/schedule_50e.py): checkpoint / log by iteration
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, save_last=True, max_keep_ckpts=3, interval=5000))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

# An all-VOID panoptic map (e.g. an undertrained model) draws as the image instead of crashing mmdet's visualizer.
visualizer = dict(type='M2FDetLocalVisualizer')
