# Mask2Former R50 on COCO panoptic, LSJ 1024, 50 epochs (paper: 51.9 PQ; mmdet's reproduction 52.0).
_base_ = [
    '_base_/models/m2f_r50.py',
    '_base_/datasets/coco_panoptic.py',
    '_base_/schedules/schedule_50e.py',
    '_base_/runtime_det.py',  # mmdet 3.3's hooks, env, visualizer, logging; M2FRunner
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
