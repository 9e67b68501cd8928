# Mask2Former R50 as an mmsegmentation EncoderDecoder (semantic segmentation, ADE20K's 150 classes),
# paper defaults. The head is m2f_head.py's, behind mmseg's decode-head interface (M2FSegHead).
# num_classes None: the dataset's (m2f_mm/config/data.py; ADE20K: 150).
# Mirrors the model of mmseg 1.2.2's configs/mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py.
_base_ = ['./m2f_head.py']
num_classes = None
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512),  # crop size
    test_cfg=dict(size_divisor=32))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        deep_stem=False,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='SyncBN', requires_grad=False),
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    decode_head=dict(_base_.m2f_head, type='M2FSegHead', num_classes=num_classes, align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
