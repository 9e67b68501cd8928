# Mask2Former Swin-T on Cityscapes semantic segmentation, 512x1024 crop, 90k iterations (paper: 82.1
# mIoU; mmseg 81.71). Equivalent of mmseg 1.2.2's mask2former_swin-t_8xb2-90k_cityscapes-512x1024.py.
_base_ = ['./m2f_r50_8xb2-90k_cityscapes-512x1024.py', '_base_/models/swin.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_tiny_patch4_window7_224_20220317-1cdeb081.pth'  # noqa
model = dict(
    backbone=dict(_base_.swin_t, _delete_=True, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_custom_keys))
