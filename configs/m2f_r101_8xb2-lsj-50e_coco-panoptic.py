# Mask2Former R101 on COCO panoptic, LSJ 1024, 50 epochs (paper: 52.6 PQ; mmdet 52.4).
# Equivalent of mmdet 3.3's mask2former_r101_8xb2-lsj-50e_coco-panoptic.py.
_base_ = ['./m2f_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
