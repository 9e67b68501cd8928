# COCO panoptic with DETR's multi-scale augmentation, the data of mmdet 3.3's MaskFormer recipes
# (configs/maskformer/maskformer_r50_ms-16xb1-75e_coco.py): flip, then either a short side of 480..800
# (long side at most 1333), or a short side of 400 / 500 / 600, a random crop of 384..600 px and a short
# side of 480..800; 1 image per GPU. Panoptic evaluation only. coco_panoptic.py's dataset, loaders and
# data_root handling, with m2f_mm's panopticapi-free annotation loader and PQ metric.
_base_ = ['./coco_panoptic.py']
backend_args = None
scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333), (640, 1333), (672, 1333),
          (704, 1333), (736, 1333), (768, 1333), (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='M2FLoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)], keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600), allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=scales, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=1, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=1)
test_dataloader = val_dataloader
# ann_file / seg_prefix: the val dataset's panoptic JSON and PNGs (m2f_mm/config/data.py)
val_evaluator = [dict(type='M2FCocoPanopticMetric', backend_args=backend_args)]
test_evaluator = val_evaluator
