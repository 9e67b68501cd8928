# Mask2Former Swin-S on ADE20K semantic segmentation, 512 crop, 160k iterations (paper: 51.3 mIoU;
# mmseg 51.24). Equivalent of mmseg 1.2.2's mask2former_swin-s_8xb2-160k_ade20k-512x512.py.
_base_ = ['./m2f_swin-t_8xb2-160k_ade20k-512x512.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_small_patch4_window7_224_20220317-7ba6d6dd.pth'  # noqa
model = dict(backbone=dict(_base_.swin_s, init_cfg=dict(checkpoint=pretrained)))
