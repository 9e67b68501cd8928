# Mask2Former Swin-L (IN-21k, 384, window 12) on COCO panoptic, 200 queries, LSJ 1024, 100 epochs,
# 16 GPUs x 1 image (paper: 57.8 PQ; mmdet 57.6). Official weights: docs/official_checkpoints.md.
# Equivalent of mmdet 3.3's mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py;
# configs/m2f_swin-l_coco-panoptic.py is the short name of this recipe.
_base_ = ['./m2f_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic.py']
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth'  # noqa
model = dict(
    backbone=dict(_base_.swin_l, init_cfg=dict(checkpoint=pretrained)),
    panoptic_head=dict(num_queries=200, in_channels=[192, 384, 768, 1536]))
train_dataloader = dict(batch_size=1, num_workers=1)

max_iters = 737500  # 100 epochs at batch 16; milestones of the original (see _base_/schedules/schedule_50e.py)
param_scheduler = dict(milestones=[655556 / max_iters, 710184 / max_iters])  # fractions of max_iters
interval = 5000
train_cfg = dict(max_iters=max_iters, val_interval=interval / max_iters,
                 dynamic_intervals=[((max_iters // interval * interval + 1) / max_iters, 1.0)])
