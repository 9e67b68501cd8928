# MaskFormer R101-D32 on ADE20K semantic segmentation, 512 crop, 160k iterations (paper: 45.5 mIoU;
# mmseg 45.11). Reproduces mmseg 1.2.2's configs/maskformer/maskformer_r101-d32_8xb2-160k_ade20k-512x512.py.
_base_ = ['./maskformer_r50-d32_8xb2-160k_ade20k-512x512.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
