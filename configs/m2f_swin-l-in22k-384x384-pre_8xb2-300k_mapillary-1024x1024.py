# Mask2Former Swin-L (IN-22k, 384) on Mapillary Vistas v1.2 semantic segmentation (65 classes), 100 queries,
# 1024 crop, 300k iterations, batch 16 (paper: 63.2 mIoU). The original's
# configs/mapillary-vistas/semantic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_300k.yaml, with
# the Swin-L weights mmseg's configs load (the same IN-22k release, converted by OpenMMLab).
_base_ = ['./m2f_r50_8xb2-300k_mapillary-1024x1024.py', '_base_/models/swin.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
model = dict(
    backbone=dict(_base_.swin_l, _delete_=True, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_custom_keys))
