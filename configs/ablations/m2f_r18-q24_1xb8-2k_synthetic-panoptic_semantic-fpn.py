# Ablation of the main job: a Semantic FPN pixel decoder instead of the multi-scale deformable-attention one.
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(pixel_decoder=dict(
    _delete_=True, type='M2FSemanticFPNPixelDecoder', num_outs=3, scale_channels=32,
    norm_cfg=dict(type='GN', num_groups=16))))
