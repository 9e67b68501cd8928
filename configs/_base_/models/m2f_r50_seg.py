# Mask2Former R50 as an mmsegmentation EncoderDecoder (semantic segmentation), paper defaults.
# Same head as the mmdet detector (M2FSegHead is M2FHead with mmseg's decode-head interface).
num_classes = 150
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512),  # crop size
    test_cfg=dict(size_divisor=32))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        deep_stem=False,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='SyncBN', requires_grad=False),
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    decode_head=dict(
        type='M2FSegHead',
        in_channels=[256, 512, 1024, 2048],
        strides=[4, 8, 16, 32],
        feat_channels=256,
        out_channels=256,
        num_classes=num_classes,
        num_queries=100,
        num_transformer_feat_level=3,
        align_corners=False,
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
            num_layers=9,
            layer_cfg=dict(embed_dims=256, num_heads=8, feedforward_channels=2048)),
        criterion=dict(
            type='M2FCriterion',
            num_classes=num_classes,
            num_points=12544,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            cls_weight=2.0,
            mask_weight=5.0,
            dice_weight=5.0,
            no_object_weight=0.1,
            assigner=dict(type='M2FHungarianMatcher', cls_weight=2.0, mask_weight=5.0, dice_weight=5.0))),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
