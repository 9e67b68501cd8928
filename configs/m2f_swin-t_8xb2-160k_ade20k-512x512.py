# Mask2Former Swin-T on ADE20K semantic segmentation, 512 crop, 160k iterations (paper: 47.7 mIoU;
# mmseg 48.66). Equivalent of mmseg 1.2.2's mask2former_swin-t_8xb2-160k_ade20k-512x512.py.
_base_ = ['./m2f_r50_8xb2-160k_ade20k-512x512.py', '_base_/models/swin.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_tiny_patch4_window7_224_20220317-1cdeb081.pth'  # noqa
model = dict(
    backbone=dict(_base_.swin_t, _delete_=True, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_custom_keys))
