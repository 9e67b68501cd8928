# Mask2Former Swin-T (IN-1k, 224, window 7) on COCO instance segmentation, LSJ 1024, 50 epochs
# (paper: 45.0 mask AP; mmdet 44.7). Equivalent of mmdet 3.3's mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py.
_base_ = ['./m2f_r50_8xb2-lsj-50e_coco.py', '_base_/models/swin.py']
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(_base_.swin_t, _delete_=True, convert_weights=True,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    panoptic_head=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_custom_keys))
