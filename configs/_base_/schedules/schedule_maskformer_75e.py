# MaskFormer COCO panoptic recipe of mmdet 3.3 (maskformer_r50_ms-16xb1-75e_coco.py): AdamW lr 1e-4,
# weight decay 1e-4, backbone lr x0.1, no decay on norms and the query embedding, gradient clipping
# 0.01, 75 epochs at 16 images per iteration, lr x0.1 after epoch 50, validation every epoch.
# mmdet counts epochs; here an epoch is 7,375 iterations at 16 images (118,000 images, the convention of
# schedule_50e.py), so 553,125 iterations, and every iteration setting is a fraction of
# train_cfg.max_iters (m2f_mm/config/schedule.py): the recipe's proportions at any --cfg-options
# train_cfg.max_iters=N.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'query_embed': dict(lr_mult=1.0, decay_mult=0.0),
        },
        norm_decay_mult=0.0),
    clip_grad=dict(max_norm=0.01, norm_type=2))

epochs = 75
max_iters = epochs * 7375
param_scheduler = dict(type='MultiStepLR', begin=0, end=1.0, by_epoch=False, milestones=[50 / epochs], gamma=0.1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1 / epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# base_batch_size = 16 GPUs x 1 image
auto_scale_lr = dict(enable=False, base_batch_size=16)
