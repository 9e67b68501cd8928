# Cityscapes panoptic segmentation (8 thing + 11 stuff classes) for the mmdet detector, read from
# cityscapesscripts' COCO panoptic files (tools/dataset_converters/cityscapes.py --tasks panoptic);
# M2FCityscapesPanopticDataset finds images in their city folders. ade20k_panoptic.py's recipe at
# Cityscapes sizes (the original's): short side one of 512..2048 px (0.5-2.0 x 1024), long side at
# most 4096, random 512x1024 crop (no fixed padding); test at short side 1024, long side at most 2048.
_base_ = ['./ade20k_panoptic.py']
dataset_type = 'M2FCityscapesPanopticDataset'
data_root = 'data/cityscapes/'
crop_size = (512, 1024)  # (height, width)
short_side, long_side = 1024, 2048
train_pipeline = list(_base_.train_pipeline)
train_pipeline[2] = dict(train_pipeline[2], scales=[int(short_side * x * 0.1) for x in range(5, 21)], max_size=4096)
train_pipeline[3] = dict(train_pipeline[3], crop_size=crop_size[::-1])
test_pipeline = list(_base_.test_pipeline)
test_pipeline[1] = dict(test_pipeline[1], scale=short_side, max_size=long_side)
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='gtFine/cityscapes_panoptic_train.json',
    data_prefix=dict(img='leftImg8bit/train/', seg='gtFine/cityscapes_panoptic_train/'), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='gtFine/cityscapes_panoptic_val.json',
    data_prefix=dict(img='leftImg8bit/val/', seg='gtFine/cityscapes_panoptic_val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='M2FCocoPanopticMetric'),  # the val dataset's JSON and PNGs
    dict(type='M2FSemSegMetric', prefix='sem_seg'),
]
test_evaluator = val_evaluator
