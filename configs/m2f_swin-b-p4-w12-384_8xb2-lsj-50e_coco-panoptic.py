# Mask2Former Swin-B (IN-1k, 384, window 12) on COCO panoptic, LSJ 1024, 50 epochs (paper: 55.1 PQ;
# mmdet 55.1). Equivalent of mmdet 3.3's mask2former_swin-b-p4-w12-384_8xb2-lsj-50e_coco-panoptic.py.
_base_ = ['./m2f_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py']
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window12_384.pth'  # noqa
model = dict(
    backbone=dict(_base_.swin_b, init_cfg=dict(checkpoint=pretrained)),
    panoptic_head=dict(in_channels=[128, 256, 512, 1024]))
