# Mask2Former Swin-L (IN-22k, 384) on Cityscapes semantic segmentation, 512x1024 crop, 90k iterations
# (paper: 83.3 mIoU; mmseg 83.65). Equivalent of mmseg 1.2.2's
# mask2former_swin-l-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py.
_base_ = ['./m2f_swin-t_8xb2-90k_cityscapes-512x1024.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
model = dict(
    backbone=dict(_base_.swin_l, init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
