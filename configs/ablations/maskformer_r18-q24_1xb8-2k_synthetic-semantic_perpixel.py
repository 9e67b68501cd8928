# MaskFormer's PerPixelBaseline on the synthetic semantic task: MaskFormer's pixel decoder (as in
# maskformer_r18-q24_1xb8-2k_synthetic-semantic.py) + a 1x1 conv classifier, per-pixel cross-entropy.
# Only the head differs from the MaskFormer run (_base_/models/maskformer_baselines_heads.py).
_base_ = ['../maskformer_r18-q24_1xb8-2k_synthetic-semantic.py', '../_base_/models/maskformer_baselines_heads.py']
model = dict(decode_head=dict(
    _base_.per_pixel_head,
    _delete_=True,
    in_channels=_base_.maskformer_tiny_head.in_channels,
    feat_channels=64,
    out_channels=64,
    pixel_decoder=_base_.maskformer_tiny_head.pixel_decoder))
