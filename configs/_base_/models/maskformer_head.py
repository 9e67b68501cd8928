# The MaskFormer head of the paper (Cheng et al., NeurIPS 2021), defined once: a plain FPN pixel
# decoder (nearest upsampling, 3x3 mask-feature conv), a 6-layer post-norm DETR decoder over 100
# zero-initialised queries attending to the 1/32 map, and MaskFormer's losses on whole masks: focal
# (x20) + dice (x1) + classification (x1, no-object x0.1), the matcher's costs the same (it takes
# the criterion's weights and mask loss). mmdet's R50 recipe adds a transformer encoder to the pixel
# decoder (maskformer_r50.py); mmseg's recipes and mmdet's Swin-L use it as is (maskformer_r50_seg.py).
# The mmdet detector places it as `panoptic_head`, the mmseg EncoderDecoder as `decode_head`, each
# adding its type and class counts; the criterion's `num_classes` comes from the head.
maskformer_head = dict(
    in_channels=[256, 512, 1024, 2048],  # backbone channels at strides 4, 8, 16, 32 (ResNet-50/101)
    feat_channels=256,
    out_channels=256,
    num_queries=100,
    pixel_decoder=dict(
        type='M2FMaskFormerPixelDecoder',
        encoder=None,
        norm_cfg=dict(type='GN', num_groups=32),
        act_cfg=dict(type='ReLU')),
    # the decoder attends to the backbone's 1/32 map through a 1x1 projection to 256 when its width is not 256
    enforce_decoder_input_project=False,
    positional_encoding=dict(num_feats=128, normalize=True),
    transformer_decoder=dict(
        type='M2FDETRDecoder',
        num_layers=6,
        layer_cfg=dict(embed_dims=256, num_heads=8, feedforward_channels=2048, dropout=0.1)),
    criterion=dict(
        type='M2FCriterion',
        cls_weight=1.0,
        mask_weight=20.0,
        dice_weight=1.0,
        no_object_weight=0.1,
        mask_loss='focal',
        full_mask=True,  # every pixel, no point sampling
        match_at='prediction'))  # matching at the mask logits' resolution (GT downsampled), as the original
