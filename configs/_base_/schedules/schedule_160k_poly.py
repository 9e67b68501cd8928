# ADE20K / Cityscapes recipe: AdamW 1e-4, wd 0.05, backbone lr x0.1, no decay on norms and embeddings,
# gradient clipping 0.01, poly lr over 160k iterations. Iteration settings are fractions of
# train_cfg.max_iters (m2f_mm/config/schedule.py): poly over the whole run, validation every 1/32 of it
# (5000 of 160k), whatever max_iters a run sets.
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
            'pixel_decoder.level_embed': dict(lr_mult=1.0, decay_mult=1.0),  # see schedule_50e.py
        },
        norm_decay_mult=0.0))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=1.0, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=5000 / 160000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# base_batch_size = 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)
