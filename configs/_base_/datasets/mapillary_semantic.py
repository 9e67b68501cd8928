# Mapillary Vistas v1.2 semantic segmentation (65 classes): mmseg's MapillaryDataset_v1 with its 65-class
# metainfo (mmseg's mapillary_v1_65.py), so label 65 "Unlabeled" maps to 255 and is ignored, as the
# original's IGNORE_VALUE 65. Read from tools/dataset_converters/mapillary.py's output (data/mapillary_vistas/:
# train/, annotations/semantic_train/, ...); the release's own training/images + training/v1.2/labels
# work too (data_prefix=dict(img_path='training/images', seg_map_path='training/v1.2/labels')).
# The original's recipe: short side one of 1024..4096 px (0.5-2.0 x 2048), long side at most 8192,
# random 1024x1024 crop without a single-class area limit, flip, colour jitter; batch 2 per GPU; test at
# short side 2048 with the long side at most 2048, i.e. the long side at 2048.
_base_ = ['mmseg::_base_/datasets/mapillary_v1_65.py']
data_root = 'data/mapillary_vistas/'
crop_size = (1024, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='M2FLoadSegAnnotations'),  # mmseg's LoadAnnotations + a label-PNG size check
    dict(type='RandomChoiceResize', scales=[int(2048 * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=8192),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 2048), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# data_root=None: every dataset takes the config's top-level data_root (m2f_mm/config/data.py)
train_dataloader = dict(batch_size=2, dataset=dict(
    data_root=None, data_prefix=dict(img_path='train', seg_map_path='annotations/semantic_train'),
    pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    data_root=None, data_prefix=dict(img_path='val', seg_map_path='annotations/semantic_val'),
    pipeline=test_pipeline))
test_dataloader = val_dataloader
