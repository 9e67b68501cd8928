# MaskFormer's head (maskformer_head.py) scaled down as m2f_tiny.py scales Mask2Former's, for the synthetic
# benchmark's ResNet-18 at a quarter width: a 2-layer encoder in the FPN pixel decoder, 6 post-norm DETR
# decoder layers over the 1/32 map, 24 queries, 64 wide; focal + dice losses on whole masks. The panoptic
# (M2FMaskFormerHead) and semantic (M2FMaskFormerSegHead) synthetic configs place it and add its type.
_base_ = ['./maskformer_head.py']
maskformer_tiny_head = dict(
    _base_.maskformer_head,
    in_channels=[16, 32, 64, 128],
    feat_channels=64,
    out_channels=64,
    num_queries=24,
    pixel_decoder=dict(
        type='M2FMaskFormerPixelDecoder',
        encoder=dict(num_layers=2, layer_cfg=dict(embed_dims=64, num_heads=4, feedforward_channels=256, dropout=0.1)),
        positional_encoding=dict(num_feats=32, normalize=True),
        norm_cfg=dict(type='GN', num_groups=16),
        act_cfg=dict(type='ReLU')),
    positional_encoding=dict(num_feats=32, normalize=True),
    transformer_decoder=dict(
        type='M2FDETRDecoder',
        num_layers=6,
        layer_cfg=dict(embed_dims=64, num_heads=4, feedforward_channels=256, dropout=0.1)))
