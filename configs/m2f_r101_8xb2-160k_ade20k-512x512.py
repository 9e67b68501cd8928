# Mask2Former R101 on ADE20K semantic segmentation, 512 crop, 160k iterations (paper: 47.8 mIoU;
# mmseg 48.6). Equivalent of mmseg 1.2.2's mask2former_r101_8xb2-160k_ade20k-512x512.py.
_base_ = ['./m2f_r50_8xb2-160k_ade20k-512x512.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
