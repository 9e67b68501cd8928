# Mask2Former R50 as an mmdet detector, paper defaults. The class counts are left to the data: None means
# "the dataset's" (m2f_mm/config/data.py fills them from its annotation file; COCO panoptic: 80 + 53).
# Mirrors the model of mmdet 3.3's configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py.
_base_ = ['./m2f_head.py']
num_things_classes = None
num_stuff_classes = None

data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
    pad_mask=True,
    mask_pad_value=0,
    pad_seg=True,
    seg_pad_value=255)

model = dict(
    type='M2FDetector',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    panoptic_head=dict(
        _base_.m2f_head, type='M2FHead', num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes),
    panoptic_fusion_head=dict(
        type='M2FFusionHead', num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    train_cfg=dict(),  # empty: the training settings live in panoptic_head.criterion
    test_cfg=dict(
        panoptic_on=True,
        instance_on=True,
        semantic_on=True,
        object_mask_thr=0.8,
        iou_thr=0.8,
        max_per_image=100,
        filter_low_score=True),
    init_cfg=None)
