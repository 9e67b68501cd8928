# MaskFormer R50-D32 as an mmsegmentation EncoderDecoder (semantic segmentation, ADE20K's 150 classes):
# the plain FPN pixel decoder, the transformer decoder over the backbone's own 1/32 map (projected
# 2048 -> 256), no encoder. num_classes None: the dataset's (m2f_mm/config/data.py; ADE20K: 150).
# Mirrors the model of mmseg 1.2.2's configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py
# (a standard ResNet, not mmseg's usual ResNetV1c; SyncBN with trainable affine, statistics frozen).
_base_ = ['./maskformer_head.py']
num_classes = None
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))  # crop size; test images are not padded, as mmseg's recipe
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    decode_head=dict(
        _base_.maskformer_head, type='M2FMaskFormerSegHead', num_classes=num_classes, align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
