# Mask2Former Swin-S on Cityscapes semantic segmentation, 512x1024 crop, 90k iterations (paper: 82.6
# mIoU; mmseg 82.57). Equivalent of mmseg 1.2.2's mask2former_swin-s_8xb2-90k_cityscapes-512x1024.py.
_base_ = ['./m2f_swin-t_8xb2-90k_cityscapes-512x1024.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_small_patch4_window7_224_20220317-7ba6d6dd.pth'  # noqa
model = dict(backbone=dict(_base_.swin_s, init_cfg=dict(checkpoint=pretrained)))
