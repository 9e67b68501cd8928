# The synthetic benchmark's Mask2Former trained for instance segmentation only: the model, schedule and
# optimizer of m2f_r18-q24_1xb8-2k_synthetic-panoptic.py, trained on the things of annotations/instances_train.json
# (COCO instances; no stuff classes) and evaluated with COCO mask AP on instances_val.json. Set against the
# panoptic-trained model's mask AP, it is the paper's "one model for three tasks" comparison.
_base_ = ['./m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
dataset_type = 'M2FSyntheticInstanceDataset'  # mmdet's CocoDataset; the synthetic thing classes as its fallback
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# data_root and the thing classes come from the config's data_root (m2f_mm/config/)
train_dataloader = dict(dataset=dict(
    _delete_=True, type=dataset_type, ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
    filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    _delete_=True, type=dataset_type, ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
    test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric', metric=['segm'])
test_evaluator = val_evaluator
model = dict(
    data_preprocessor=dict(pad_seg=False),
    panoptic_head=dict(num_stuff_classes=0),
    panoptic_fusion_head=dict(num_stuff_classes=0),
    test_cfg=dict(panoptic_on=False, instance_on=True, semantic_on=False))
