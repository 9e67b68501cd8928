# Mask2Former Swin-B (IN-21k, 384, window 12) on COCO panoptic, LSJ 1024, 50 epochs (paper: 56.4 PQ;
# mmdet 56.3). Equivalent of mmdet 3.3's mask2former_swin-b-p4-w12-384-in21k_8xb2-lsj-50e_coco-panoptic.py.
_base_ = ['./m2f_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic.py']
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window12_384_22k.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))
