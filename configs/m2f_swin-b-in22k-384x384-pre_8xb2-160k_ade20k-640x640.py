# Mask2Former Swin-B (IN-22k, 384) on ADE20K semantic segmentation, 640 crop, 160k iterations (paper:
# 53.9 mIoU; mmseg 53.9). Equivalent of mmseg 1.2.2's mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py.
_base_ = ['./m2f_swin-b-in1k-384x384-pre_8xb2-160k_ade20k-640x640.py']
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_base_patch4_window12_384_22k_20220317-e5c09f74.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))
