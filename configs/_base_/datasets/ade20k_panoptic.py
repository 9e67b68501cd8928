# ADE20K panoptic segmentation (100 thing + 50 stuff classes) for the mmdet detector, read from the
# COCO panoptic files of tools/dataset_converters/ade20k.py (or the original's
# prepare_ade20k_pan_seg.py); M2FPanopticDataset takes the class names from the file, things first.
# The original's recipe: short side one of 320..1280 px (0.5-2.0 x 640), long side at most 2560,
# random 640 crop padded to 640x640 (the model's batch_augments), flip, colour jitter; test at
# short side 640. Evaluated with PQ and the mIoU of the semantic output. Loaders as coco_panoptic.py's.
_base_ = ['./coco_panoptic.py']
dataset_type = 'M2FPanopticDataset'
data_root = 'data/ade/ADEChallengeData2016/'
backend_args = None
crop_size = (640, 640)  # (height, width)
short_side, long_side = 640, 2560  # test size; training scales 0.5-2.0 x short_side

train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True, backend_args=backend_args),
    dict(type='M2FLoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True, backend_args=backend_args),
    dict(type='RandomChoiceResize', scales=[int(short_side * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=long_side),
    dict(type='RandomCrop', crop_size=crop_size[::-1], crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),  # mmdet's crop_size is (width, height)
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='ResizeShortestEdge', scale=short_side, max_size=long_side),
    dict(type='M2FLoadPanopticAnnotations', with_bbox=False, with_mask=False, with_seg=True, backend_args=backend_args),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='ade20k_panoptic_train.json',
    data_prefix=dict(img='images/training/', seg='ade20k_panoptic_train/'), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='ade20k_panoptic_val.json',
    data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='M2FCocoPanopticMetric'),  # the val dataset's JSON and PNGs
    dict(type='M2FSemSegMetric', prefix='sem_seg'),
]
test_evaluator = val_evaluator
