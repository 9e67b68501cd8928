# The MaskFormer paper's semantic-segmentation baselines (Cheng et al., NeurIPS 2021: per-pixel vs mask
# classification; the original's configs/ade20k-150/per_pixel_baseline(_plus)_R50_bs16_160k.yaml) as decode
# heads that replace MaskFormer's in configs/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py: backbone, data,
# schedule and optimizer are that config's, so a comparison changes the head only. Two heads, one per leaf
# config (fixed matching is a matcher switch of MaskFormer, in its own leaf config):
# - per_pixel_head: MaskFormer's pixel decoder (nearest FPN, 3x3 mask-feature conv, no encoder) + a 1x1 conv
#   classifier; per-pixel cross-entropy (x1) at the GT resolution.
# - per_pixel_plus_head: the same plus MaskFormer's transformer decoder (6 layers over the backbone's 1/32 map)
#   with one query per class and no class head: class c's logits = mask_embed(query c) . per-pixel embedding;
#   per-pixel cross-entropy on every decoder layer (the original's DEEP_SUPERVISION: True).
# num_classes None: the dataset's (m2f_mm/config/data.py; ADE20K: 150).
maskformer_pixel_decoder = dict(
    type='M2FMaskFormerPixelDecoder',
    encoder=None,
    norm_cfg=dict(type='GN', num_groups=32),
    act_cfg=dict(type='ReLU'))
per_pixel_head = dict(
    type='M2FPerPixelHead',
    in_channels=[256, 512, 1024, 2048],  # backbone channels at strides 4, 8, 16, 32
    feat_channels=256,
    out_channels=256,
    num_classes=None,
    pixel_decoder=maskformer_pixel_decoder,
    loss_weight=1.0,
    ignore_index=255,
    align_corners=False)
maskformer_transformer = dict(
    enforce_decoder_input_project=False,  # the 2048-wide 1/32 map is projected to 256 anyway
    positional_encoding=dict(num_feats=128, normalize=True),
    transformer_decoder=dict(
        type='M2FDETRDecoder',
        num_layers=6,
        layer_cfg=dict(embed_dims=256, num_heads=8, feedforward_channels=2048, dropout=0.1)))
per_pixel_plus_head = dict(
    per_pixel_head,
    type='M2FPerPixelPlusHead',
    deep_supervision=True,  # num_queries = num_classes (query c stands for class c)
    **maskformer_transformer)
