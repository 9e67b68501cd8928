# MaskFormer Swin-T on ADE20K semantic segmentation, 512 crop, 160k iterations (paper: 46.7 mIoU; mmseg
# 46.69). Reproduces mmseg 1.2.2's configs/maskformer/maskformer_swin-t_upernet_8xb2-160k_ade20k-512x512.py
# (its name says upernet; the model is MaskFormer, no UPerNet in it).
# maskformer_r50-d32_8xb2-160k_ade20k-512x512.py's head and data, the Swin schedule
_base_ = ['_base_/runtime_seg.py', '_base_/datasets/ade20k_semantic_mmseg.py', '_base_/models/maskformer_r50_seg.py',
          '_base_/schedules/schedule_maskformer_160k_swin.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_tiny_patch4_window7_224_20220317-1cdeb081.pth'  # noqa
model = dict(
    backbone=dict(
        _delete_=True, type='SwinTransformer', pretrain_img_size=224, embed_dims=96, patch_size=4, window_size=7,
        mlp_ratio=4, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3),
        qkv_bias=True, qk_scale=None, patch_norm=True, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.3,
        use_abs_pos_embed=False, act_cfg=dict(type='GELU'), norm_cfg=dict(type='LN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),  # OpenMMLab's copy of the official weights
    decode_head=dict(in_channels=[96, 192, 384, 768]))
