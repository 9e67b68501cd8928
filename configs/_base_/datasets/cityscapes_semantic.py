# Cityscapes semantic segmentation (19 classes): mmseg's dataset settings (data/cityscapes, see
# docs/model_zoo.md) with Mask2Former's training augmentation: short side one of 512..2048 px
# (0.5-2.0 x 1024), long side at most 4096, random 512x1024 crop without a single-class area limit,
# flip, colour jitter; batch 2 per GPU; test at short side 1024 (long side at most 2048).
_base_ = ['mmseg::_base_/datasets/cityscapes.py']
crop_size = (512, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='M2FLoadSegAnnotations'),  # mmseg's LoadAnnotations, refusing a label PNG sized unlike its image
    dict(type='RandomChoiceResize', scales=[int(1024 * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=4096),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# data_root=None: every dataset takes the config's top-level data_root (m2f_mm/config/data.py)
train_dataloader = dict(batch_size=2, dataset=dict(data_root=None, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=None))
test_dataloader = dict(dataset=dict(data_root=None))
