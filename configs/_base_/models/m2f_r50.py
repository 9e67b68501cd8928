# Mask2Former R50, COCO panoptic (80 things + 53 stuff), paper defaults.
# Mirrors mmdet 3.3's configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py model.
num_things_classes = 80
num_stuff_classes = 53
num_classes = num_things_classes + num_stuff_classes

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
        type='M2FHead',
        in_channels=[256, 512, 1024, 2048],  # strides 4, 8, 16, 32
        strides=[4, 8, 16, 32],
        feat_channels=256,
        out_channels=256,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=100,
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='M2FPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(embed_dims=256, num_heads=8, num_levels=3, num_points=4,
                               feedforward_channels=1024)),
            positional_encoding=dict(num_feats=128, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=128, normalize=True),
        transformer_decoder=dict(
            num_layers=9,  # 3 rounds over 1/32, 1/16, 1/8
            layer_cfg=dict(embed_dims=256, num_heads=8, feedforward_channels=2048)),
        criterion=dict(
            type='M2FCriterion',
            num_classes=num_classes,
            num_points=12544,  # 112 * 112
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            cls_weight=2.0,
            mask_weight=5.0,
            dice_weight=5.0,
            no_object_weight=0.1,
            assigner=dict(type='M2FHungarianMatcher', cls_weight=2.0, mask_weight=5.0, dice_weight=5.0))),
    panoptic_fusion_head=dict(
        type='M2FFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes),
    # The loss settings live in panoptic_head.criterion; a non-None train_cfg enables loss().
    train_cfg=dict(),
    test_cfg=dict(
        panoptic_on=True,
        instance_on=True,
        semantic_on=True,
        object_mask_thr=0.8,
        iou_thr=0.8,
        max_per_image=100,
        filter_low_score=True),
    init_cfg=None)
