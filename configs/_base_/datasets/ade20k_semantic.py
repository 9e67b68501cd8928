# ADE20K semantic segmentation (150 classes): mmseg's dataset settings (data/ade/ADEChallengeData2016,
# see docs/model_zoo.md) with Mask2Former's training augmentation: short side one of 256..1024 px
# (0.5-2.0 x 512), long side at most 2048, random 512 crop, flip, colour jitter; batch 2 per GPU.
# The crop takes no single-class area limit (cat_max_ratio=1.0: the original's
# SINGLE_CATEGORY_MAX_AREA 1.0; mmseg's configs use 0.75).
_base_ = ['mmseg::_base_/datasets/ade20k.py']
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='M2FLoadSegAnnotations', reduce_zero_label=True),  # mmseg's, refusing a label PNG sized unlike its image
    dict(type='RandomChoiceResize', scales=[int(crop_size[0] * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=4 * crop_size[0]),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# data_root=None: every dataset takes the config's top-level data_root (m2f_mm/config/data.py)
train_dataloader = dict(batch_size=2, dataset=dict(data_root=None, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=None))
test_dataloader = dict(dataset=dict(data_root=None))
