# Mapillary Vistas v1.2 panoptic segmentation (37 thing + 28 stuff classes) for the mmdet detector, read from
# tools/dataset_converters/mapillary.py's output (data/mapillary_vistas/: the release's panoptic PNGs and
# JSON with "Unlabeled" VOID, categories named as mmseg's MapillaryDataset_v1); M2FPanopticDataset takes the
# class names from the file, things first. ade20k_panoptic.py's recipe at the original's Mapillary sizes:
# short side one of 1024..4096 px (0.5-2.0 x 2048), long side at most 8192, random 1024x1024 crop padded to
# 1024x1024 (the model's batch_augments), flip, colour jitter; test at short side 2048, long side at most
# 2048. Evaluated with PQ and the mIoU of the semantic output, as the original (no instance AP there;
# annotations/instances_val.json is written for CocoMetric when wanted).
_base_ = ['./ade20k_panoptic.py']
dataset_type = 'M2FPanopticDataset'
data_root = 'data/mapillary_vistas/'
crop_size = (1024, 1024)  # (height, width)
short_side, long_side = 2048, 2048
train_pipeline = list(_base_.train_pipeline)
train_pipeline[2] = dict(train_pipeline[2], scales=[int(short_side * x * 0.1) for x in range(5, 21)], max_size=8192)
train_pipeline[3] = dict(train_pipeline[3], crop_size=crop_size[::-1])
test_pipeline = list(_base_.test_pipeline)
test_pipeline[1] = dict(test_pipeline[1], scale=short_side, max_size=long_side)
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='annotations/panoptic_train.json',
    data_prefix=dict(img='train/', seg='annotations/panoptic_train/'), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='annotations/panoptic_val.json',
    data_prefix=dict(img='val/', seg='annotations/panoptic_val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='M2FCocoPanopticMetric'),  # the val dataset's JSON and PNGs
    dict(type='M2FSemSegMetric', prefix='sem_seg'),
]
test_evaluator = val_evaluator
