# ADE20K instance segmentation (100 thing classes) for the mmdet detector, read from
# ade20k_instance_{train,val}.json (COCO instances with RLE masks, tools/dataset_converters/ade20k.py
# or the original's prepare_ade20k_ins_seg.py). Same augmentation as ade20k_panoptic.py; mask AP.
_base_ = ['./ade20k_panoptic.py']
dataset_type = 'M2FInstanceDataset'
train_pipeline = list(_base_.train_pipeline)
train_pipeline[1] = dict(type='LoadAnnotations', with_bbox=True, with_mask=True)
train_pipeline.insert(-1, dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True))
test_pipeline = list(_base_.test_pipeline)
test_pipeline[2] = dict(type='LoadAnnotations', with_bbox=True, with_mask=True)
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='ade20k_instance_train.json', data_prefix=dict(_delete_=True, img='images/training/'),
    pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='ade20k_instance_val.json', data_prefix=dict(_delete_=True, img='images/validation/'),
    pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric', metric=['segm'])  # ann_file: the val dataset's
test_evaluator = val_evaluator
