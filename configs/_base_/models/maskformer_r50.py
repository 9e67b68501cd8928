# MaskFormer R50 as an mmdet detector (COCO panoptic), with the 6-layer DETR transformer encoder on the
# 1/32 map in its pixel decoder (the paper's "R50 + 6 Enc"); the decoder attends to the encoder's output.
# The class counts are left to the data: None means "the dataset's" (m2f_mm/config/data.py; COCO panoptic:
# 80 + 53). Mirrors the model of mmdet 3.3's configs/maskformer/maskformer_r50_ms-16xb1-75e_coco.py.
_base_ = ['./maskformer_head.py']
num_things_classes = None
num_stuff_classes = None

data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=1,  # as mmdet's MaskFormer: the encoder and the decoder are told the padding
    pad_mask=True,
    mask_pad_value=0,
    pad_seg=True,
    seg_pad_value=255)

model = dict(
    type='M2FDetector',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    panoptic_head=dict(
        _base_.maskformer_head,
        type='M2FMaskFormerHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        pixel_decoder=dict(
            type='M2FMaskFormerPixelDecoder',
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(embed_dims=256, num_heads=8, feedforward_channels=2048, dropout=0.1)),
            positional_encoding=dict(num_feats=128, normalize=True),
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'))),
    panoptic_fusion_head=dict(
        type='M2FFusionHead', num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    train_cfg=dict(),  # empty: the training settings live in panoptic_head.criterion
    # MaskFormer's panoptic inference as mmdet's recipe: panoptic output only, masks kept whatever their
    # score after the overlap test (filter_low_score=False)
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=False,
        instance_on=False,
        max_per_image=100,
        object_mask_thr=0.8,
        iou_thr=0.8,
        filter_low_score=False),
    init_cfg=None)
