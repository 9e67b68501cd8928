# Cityscapes instance segmentation (8 thing classes) for the mmdet detector: mmdet's CityscapesDataset
# on annotations/instancesonly_filtered_gtFine_{train,val}.json (tools/dataset_converters/cityscapes.py
# --tasks instance, the same file as mmdet's converter). cityscapes_panoptic.py's augmentation; COCO
# mask AP (the Cityscapes AP of the paper: add mmdet's CityScapesMetric, which needs cityscapesscripts).
_base_ = ['./cityscapes_panoptic.py']
dataset_type = 'CityscapesDataset'
train_pipeline = list(_base_.train_pipeline)
train_pipeline[1] = dict(type='LoadAnnotations', with_bbox=True, with_mask=True)
train_pipeline.insert(-1, dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True))
test_pipeline = list(_base_.test_pipeline)
test_pipeline[2] = dict(type='LoadAnnotations', with_bbox=True, with_mask=True)
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='annotations/instancesonly_filtered_gtFine_train.json',
    data_prefix=dict(_delete_=True, img='leftImg8bit/train/'), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file='annotations/instancesonly_filtered_gtFine_val.json',
    data_prefix=dict(_delete_=True, img='leftImg8bit/val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric', metric=['segm'])  # ann_file: the val dataset's
test_evaluator = val_evaluator
