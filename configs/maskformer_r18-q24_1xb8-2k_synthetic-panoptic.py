# The synthetic benchmark's model with MaskFormer's head: m2f_r18-q24_1xb8-2k_synthetic-panoptic.py's backbone
# (ResNet-18 at a quarter width), data, schedule, optimizer, 24 queries and 64-wide transformer, with the
# MaskFormer head and criterion of _base_/models/maskformer_r50.py scaled down as m2f_tiny.py scales Mask2Former:
# a 2-layer encoder in the FPN pixel decoder, 6 post-norm DETR decoder layers over the 1/32 map, focal + dice
# losses on whole masks. Only the head differs, so the two configs compare the heads on the same run.
_base_ = ['./m2f_r18-q24_1xb8-2k_synthetic-panoptic.py', '_base_/models/maskformer_head.py']
dims = 64
layer = dict(embed_dims=dims, num_heads=4, feedforward_channels=256, dropout=0.1)
model = dict(
    panoptic_head=dict(
        _base_.maskformer_head,
        _delete_=True,
        type='M2FMaskFormerHead',
        in_channels=[16, 32, 64, 128],
        feat_channels=dims,
        out_channels=dims,
        num_things_classes=None,  # the dataset's (m2f_mm/config/data.py)
        num_stuff_classes=None,
        num_queries=24,
        pixel_decoder=dict(
            type='M2FMaskFormerPixelDecoder',
            encoder=dict(num_layers=2, layer_cfg=layer),
            positional_encoding=dict(num_feats=dims // 2, normalize=True),
            norm_cfg=dict(type='GN', num_groups=16),
            act_cfg=dict(type='ReLU')),
        positional_encoding=dict(num_feats=dims // 2, normalize=True),
        transformer_decoder=dict(type='M2FDETRDecoder', num_layers=6, layer_cfg=layer)))
