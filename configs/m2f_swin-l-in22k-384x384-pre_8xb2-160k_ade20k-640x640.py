# Mask2Former Swin-L (IN-22k, 384) on ADE20K semantic segmentation, 640 crop, 160k iterations (paper:
# 56.1 mIoU; mmseg 56.01). Equivalent of mmseg 1.2.2's mask2former_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py.
_base_ = ['./m2f_swin-b-in1k-384x384-pre_8xb2-160k_ade20k-640x640.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
model = dict(
    backbone=dict(_base_.swin_l, init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
