# MaskFormer's PerPixelBaseline+ on the synthetic semantic task: MaskFormer's pixel decoder and transformer
# decoder (as in maskformer_r18-q24_1xb8-2k_synthetic-semantic.py) with one query per class and no class head,
# per-pixel cross-entropy on every decoder layer. Only the head differs from the MaskFormer run.
_base_ = ['../maskformer_r18-q24_1xb8-2k_synthetic-semantic.py', '../_base_/models/maskformer_baselines_heads.py']
model = dict(decode_head=dict(
    _base_.per_pixel_plus_head,
    _delete_=True,
    in_channels=_base_.maskformer_tiny_head.in_channels,
    feat_channels=64,
    out_channels=64,
    pixel_decoder=_base_.maskformer_tiny_head.pixel_decoder,
    positional_encoding=_base_.maskformer_tiny_head.positional_encoding,
    transformer_decoder=_base_.maskformer_tiny_head.transformer_decoder))
