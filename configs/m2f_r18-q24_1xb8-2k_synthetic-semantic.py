# The tiny model and schedule of m2f_r18-q24_1xb8-2k_synthetic-panoptic.py as an mmsegmentation
# EncoderDecoder (M2FSegHead) on the synthetic label PNGs (annotations/semantic_{train,val}/, 255 =
# ignore): mmseg's tools/test.py flags, test-time augmentation (--tta) and MMSegInferencer.
_base_ = ['./m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
default_scope = 'mmseg'
seg_data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                             bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size_divisor=32, test_cfg=dict(size_divisor=32))
# Top level too (as in mmseg's configs): the runner gives it to a model without one, e.g. --tta's SegTTAModel.
data_preprocessor = dict(_delete_=True, **seg_data_preprocessor)
model = dict(
    _delete_=True,
    type='EncoderDecoder',
    data_preprocessor=seg_data_preprocessor,
    backbone={{_base_.model.backbone}},
    decode_head=dict(  # M2FHead's settings of the panoptic config, behind mmseg's decode-head interface
        type='M2FSegHead',
        num_classes=None,  # the dataset's: annotations/classes.json (m2f_mm/config/)
        in_channels={{_base_.model.panoptic_head.in_channels}},
        strides={{_base_.model.panoptic_head.strides}},
        feat_channels={{_base_.model.panoptic_head.feat_channels}},
        out_channels={{_base_.model.panoptic_head.out_channels}},
        num_queries={{_base_.model.panoptic_head.num_queries}},
        num_transformer_feat_level={{_base_.model.panoptic_head.num_transformer_feat_level}},
        pixel_decoder={{_base_.model.panoptic_head.pixel_decoder}},
        positional_encoding={{_base_.model.panoptic_head.positional_encoding}},
        transformer_decoder={{_base_.model.panoptic_head.transformer_decoder}},
        criterion={{_base_.model.panoptic_head.criterion}},
    ),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

dataset_type = 'BaseSegDataset'
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='M2FLoadSegAnnotations'), dict(type='RandomFlip', prob=0.5),
                  dict(type='PackSegInputs')]
# mmseg's own loader at test time: MMSegInferencer / mmseg.apis drop it by that name
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
img_ratios = [0.75, 1.0, 1.25]  # tools/test.py --tta: 3 scales x flip, averaged by mmseg's SegTTAModel
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]]),
]
tta_model = dict(type='SegTTAModel')
# data_root and the classes (annotations/classes.json) come from the config's data_root (m2f_mm/config/)
split = dict(type=dataset_type, img_suffix='.jpg', seg_map_suffix='.png')
train_dataloader = dict(dataset=dict(
    _delete_=True, data_prefix=dict(img_path='train', seg_map_path='annotations/semantic_train'),
    pipeline=train_pipeline, **split))
val_dataloader = dict(batch_size=1, dataset=dict(
    _delete_=True, data_prefix=dict(img_path='val', seg_map_path='annotations/semantic_val'),
    pipeline=test_pipeline, **split))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

custom_hooks = []  # M2FClassCheckHook checks M2FDetector's thing / stuff split
default_hooks = dict(visualization=dict(_delete_=True, type='SegVisualizationHook'))
visualizer = dict(_delete_=True, type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
