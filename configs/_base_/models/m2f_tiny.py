# A tiny Mask2Former that trains from scratch on 2 CPU cores in minutes (synthetic data, 192 px).
# The paper's architecture (m2f_r50.py) scaled down: ResNet-18 at a quarter width, 2 deformable
# encoder layers, 6 masked-attention decoder layers (2 rounds of 1/32, 1/16, 1/8), 24 queries.
_base_ = ['./m2f_r50.py']
num_things_classes = None  # the dataset's (m2f_mm/config/data.py)
num_stuff_classes = None
dims = 64

model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        stem_channels=16,  # explicit: mmseg's ResNet (the semantic config) would default to 64
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    panoptic_head=dict(
        in_channels=[16, 32, 64, 128],
        feat_channels=dims,
        out_channels=dims,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=24,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=16),
            encoder=dict(
                num_layers=2,
                layer_cfg=dict(embed_dims=dims, num_heads=4, feedforward_channels=256)),
            positional_encoding=dict(num_feats=dims // 2)),
        positional_encoding=dict(num_feats=dims // 2),
        transformer_decoder=dict(
            num_layers=6,
            use_masked_attention=True,  # False: the paper's ablation without masked attention
            layer_cfg=dict(embed_dims=dims, num_heads=4, feedforward_channels=256)),
        # A quarter of the 48 x 48 stride-4 mask logits of a 192 px image (the paper: 112^2 of 256^2, 19%);
        # the criterion costs about a third of a training step on CPU and is linear in the points.
        criterion=dict(num_points=24 * 24)),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes))
