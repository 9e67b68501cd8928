# Ablation of the main job: an FPN pixel decoder instead of the multi-scale deformable-attention one.
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(pixel_decoder=dict(
    _delete_=True, type='M2FFPNPixelDecoder', num_outs=3, norm_cfg=dict(type='GN', num_groups=16))))
