# A tiny Mask2Former that trains from scratch on 2 CPU cores in minutes (synthetic data, 128 px).
# Same architecture as the paper's, scaled down: ResNet-18 at a quarter width, 2 deformable encoder
# layers, 6 masked-attention decoder layers (2 rounds of 1/32, 1/16, 1/8), 24 queries.
num_things_classes = 4
num_stuff_classes = 3
num_classes = num_things_classes + num_stuff_classes
dims = 64

model = dict(
    type='M2FDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    panoptic_head=dict(
        type='M2FHead',
        in_channels=[16, 32, 64, 128],
        strides=[4, 8, 16, 32],
        feat_channels=dims,
        out_channels=dims,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=24,
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='M2FPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=16),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=2,
                layer_cfg=dict(embed_dims=dims, num_heads=4, num_levels=3, num_points=4,
                               feedforward_channels=256)),
            positional_encoding=dict(num_feats=dims // 2, normalize=True)),
        positional_encoding=dict(num_feats=dims // 2, normalize=True),
        transformer_decoder=dict(
            num_layers=6,
            use_masked_attention=True,  # False: the paper's ablation without masked attention
            layer_cfg=dict(embed_dims=dims, num_heads=4, feedforward_channels=256)),
        criterion=dict(
            type='M2FCriterion',
            num_classes=num_classes,
            num_points=32 * 32,  # the stride-4 mask of a 128 px image has 32 x 32 pixels
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            cls_weight=2.0,
            mask_weight=5.0,
            dice_weight=5.0,
            no_object_weight=0.1,
            assigner=dict(type='M2FHungarianMatcher', cls_weight=2.0, mask_weight=5.0, dice_weight=5.0))),
    panoptic_fusion_head=dict(
        type='M2FFusionHead', num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
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
