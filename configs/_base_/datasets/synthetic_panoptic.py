# A COCO-panoptic-layout dataset under data_root: the bundled synthetic shapes dataset
# (tools/dataset_converters/make_synthetic_data.py), or any dataset written in the same layout:
#   DATA_ROOT/train/*.jpg, DATA_ROOT/val/*.jpg,
#   DATA_ROOT/annotations/panoptic_{train,val}.json + panoptic_{train,val}/*.png (COCO panoptic),
#   DATA_ROOT/annotations/instances_val.json (COCO instances, for mask AP).
# Panoptic training; panoptic + instance + semantic evaluation. Nothing else names the dataset: the
# datasets take data_root, the classes (things first), palette and model class counts come from the
# JSON's categories, the evaluators' files from the val dataset (m2f_mm/config/). So a leaf config
#   _base_ = ['m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
#   data_root = 'data/my_dataset/'
# trains, validates and tests on another dataset of this layout (docs/custom_dataset.md).
# M2FPanopticDataset whose METAINFO (the fallback when no file is on this machine) is the synthetic classes
dataset_type = 'M2FSyntheticPanopticDataset'
data_root = 'data/synthetic/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='M2FLoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True, backend_args=backend_args),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='M2FLoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True, backend_args=backend_args),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='M2FCocoPanopticMetric'),  # the val dataset's panoptic JSON and PNGs
    dict(type='CocoMetric', metric=['segm'], backend_args=backend_args),  # annotations/instances_val.json
    dict(type='M2FSemSegMetric', prefix='sem_seg'),
]
test_evaluator = val_evaluator
