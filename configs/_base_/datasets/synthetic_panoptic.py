# The bundled synthetic shapes dataset (tools/dataset_converters/make_synthetic_data.py), read through
# the real COCO panoptic / instance on-disk formats: panoptic training, panoptic + instance + semantic
# evaluation.
dataset_type = 'M2FCocoPanopticDataset'
data_root = 'data/synthetic/'
backend_args = None
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star', 'sky', 'grass', 'water'),
    thing_classes=('circle', 'square', 'triangle', 'star'),
    stuff_classes=('sky', 'grass', 'water'),
    palette=[(220, 20, 60), (250, 190, 0), (190, 0, 190), (255, 110, 0), (135, 206, 235), (34, 139, 34),
             (0, 80, 140)])

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
        data_root=data_root,
        metainfo=metainfo,
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
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='M2FCocoPanopticMetric', ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/'),
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json', metric=['segm'],
         backend_args=backend_args),
    dict(type='M2FSemSegMetric', prefix='sem_seg'),
]
test_evaluator = val_evaluator
