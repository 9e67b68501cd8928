# The Mask2Former head of the paper, defined once. The mmdet detector places it as `panoptic_head`
# (m2f_r50.py) and the mmseg EncoderDecoder as `decode_head` (m2f_r50_seg.py), each adding its type
# and class counts. The criterion's `num_classes` comes from the head, and its matcher's cost
# weights default to the loss weights below (2 / 5 / 5), so neither is repeated here.
m2f_head = dict(
    in_channels=[256, 512, 1024, 2048],  # backbone channels at strides 4, 8, 16, 32 (ResNet-50/101)
    strides=[4, 8, 16, 32],
    feat_channels=256,
    out_channels=256,
    num_queries=100,
    num_transformer_feat_level=3,
    pixel_decoder=dict(
        type='M2FPixelDecoder',
        num_outs=3,
        norm_cfg=dict(type='GN', num_groups=32),
        act_cfg=dict(type='ReLU'),
        encoder=dict(
            num_layers=6,
            layer_cfg=dict(embed_dims=256, num_heads=8, num_levels=3, num_points=4, feedforward_channels=1024)),
        positional_encoding=dict(num_feats=128, normalize=True)),
    enforce_decoder_input_project=False,
    positional_encoding=dict(num_feats=128, normalize=True),
    transformer_decoder=dict(
        num_layers=9,  # 3 rounds over 1/32, 1/16, 1/8
        layer_cfg=dict(embed_dims=256, num_heads=8, feedforward_channels=2048)),
    criterion=dict(
        type='M2FCriterion',
        num_points=12544,  # 112 * 112
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
        cls_weight=2.0,
        mask_weight=5.0,
        dice_weight=5.0,
        no_object_weight=0.1))
