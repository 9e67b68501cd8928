# Swin Transformer backbones (T/S: window 7, 224 px pre-training; B/L: window 12, 384 px) and their
# optimizer keys, for leaf configs to pick from: `backbone=dict(_base_.swin_t, _delete_=True, ...)`.
# The type resolves in the config's scope (mmdet's or mmseg's SwinTransformer); mmdet configs add
# convert_weights=True because they load the official Swin release, mmseg's load OpenMMLab's copies.
__swin = dict(
    type='SwinTransformer', mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
    drop_path_rate=0.3, patch_norm=True, out_indices=(0, 1, 2, 3), with_cp=False, frozen_stages=-1)
swin_t = dict(__swin, embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7)
swin_s = dict(swin_t, depths=[2, 2, 18, 2])
swin_b = dict(swin_s, pretrain_img_size=384, embed_dims=128, num_heads=[4, 8, 16, 32], window_size=12)
swin_l = dict(swin_b, embed_dims=192, num_heads=[6, 12, 24, 48])

# Every backbone parameter gets lr x0.1 (schedule's 'backbone' key); its norms and position tables
# also get no weight decay. A custom key overrides norm_decay_mult, so backbone norms need keys of
# their own, longer than 'backbone' (the longest matching key wins). Same effect as mmdet's/mmseg's
# per-block list; 'blocks.{i}.norm' covers norm1/norm2 of block i in every stage.
__backbone_no_decay = dict(lr_mult=0.1, decay_mult=0.0)
swin_custom_keys = {
    'backbone.patch_embed.norm': __backbone_no_decay,
    'backbone.norm': __backbone_no_decay,  # the output norms norm0..norm3
    'downsample.norm': __backbone_no_decay,
    'absolute_pos_embed': __backbone_no_decay,
    'relative_position_bias_table': __backbone_no_decay,
    **{f'blocks.{i}.norm': __backbone_no_decay for i in range(18)},
}

# Swin-L IN-22k 384 from the official release (the original's backbone of its Swin-L models),
# converted on load by mmdet's SwinTransformer.
swin_l_in22k_official = dict(
    swin_l, convert_weights=True, init_cfg=dict(type='Pretrained', checkpoint='https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth'))  # noqa
