# Mask2Former R101 on Cityscapes semantic segmentation, 512x1024 crop, 90k iterations (paper: 80.1
# mIoU; mmseg 80.8). Equivalent of mmseg 1.2.2's mask2former_r101_8xb2-90k_cityscapes-512x1024.py.
_base_ = ['./m2f_r50_8xb2-90k_cityscapes-512x1024.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
