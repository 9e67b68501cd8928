# Mask2Former Swin-L (IN-21k, 384, window 12) on COCO panoptic, 200 queries, LSJ 1024, 100 epochs,
# 16 GPUs x 1 image (paper: 57.8 PQ; mmdet 57.6). Official weights: docs/official_checkpoints.md.
_base_ = ['./m2f_r50_8xb2-lsj-50e_coco-panoptic.py']
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth'  # noqa

model = dict(
    backbone=dict(
        _delete_=True, type='SwinTransformer', pretrain_img_size=384, embed_dims=192, depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48], window_size=12, mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0.,
        attn_drop_rate=0., drop_path_rate=0.3, patch_norm=True, out_indices=(0, 1, 2, 3), with_cp=False,
        convert_weights=True, frozen_stages=-1, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    panoptic_head=dict(num_queries=200, in_channels=[192, 384, 768, 1536]))
train_dataloader = dict(batch_size=1, num_workers=1)

# Swin's position tables get no weight decay (norms already get none: norm_decay_mult=0).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'absolute_pos_embed': dict(lr_mult=0.1, decay_mult=0.0),
    'relative_position_bias_table': dict(lr_mult=0.1, decay_mult=0.0)}))
max_iters = 737500  # 100 epochs at batch 16
param_scheduler = dict(end=max_iters, milestones=[655556, 710184])
interval = 5000
train_cfg = dict(max_iters=max_iters, val_interval=interval,
                 dynamic_intervals=[(max_iters // interval * interval + 1, max_iters)])
