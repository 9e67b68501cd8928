# MaskFormer Swin-S on ADE20K semantic segmentation, 512 crop, 160k iterations (paper: 49.8 mIoU; mmseg
# 49.36). Reproduces mmseg 1.2.2's configs/maskformer/maskformer_swin-s_upernet_8xb2-160k_ade20k-512x512.py.
_base_ = ['./maskformer_swin-t_upernet_8xb2-160k_ade20k-512x512.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_small_patch4_window7_224_20220317-7ba6d6dd.pth'  # noqa
model = dict(backbone=dict(depths=[2, 2, 18, 2], init_cfg=dict(checkpoint=pretrained)))
