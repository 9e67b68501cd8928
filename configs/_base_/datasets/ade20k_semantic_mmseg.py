# ADE20K semantic segmentation (150 classes) with mmseg's own augmentation, the data of mmseg 1.2.2's
# MaskFormer recipes: resize to (2048, 512) x 0.5..2.0 keeping the ratio, random 512 crop in which no class
# covers more than 75 % (cat_max_ratio=0.75), flip, colour jitter; 2 images per GPU.
# (ade20k_semantic.py, for Mask2Former, has the original's short-side augmentation and no class limit.)
_base_ = ['./ade20k_semantic.py']
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='M2FLoadSegAnnotations', reduce_zero_label=True),  # mmseg's, refusing a label PNG sized unlike its image
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader
