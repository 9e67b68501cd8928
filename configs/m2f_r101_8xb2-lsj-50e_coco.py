# Mask2Former R101 on COCO instance segmentation, LSJ 1024, 50 epochs (paper: 44.2 mask AP; mmdet 44.0).
# Equivalent of mmdet 3.3's mask2former_r101_8xb2-lsj-50e_coco.py.
_base_ = ['./m2f_r50_8xb2-lsj-50e_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
