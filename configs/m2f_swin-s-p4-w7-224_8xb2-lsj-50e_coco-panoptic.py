# Mask2Former Swin-S (IN-1k, 224, window 7) on COCO panoptic, LSJ 1024, 50 epochs (paper: 54.6 PQ;
# mmdet 54.5). Equivalent of mmdet 3.3's mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py.
_base_ = ['./m2f_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py']
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(backbone=dict(_base_.swin_s, init_cfg=dict(checkpoint=pretrained)))
