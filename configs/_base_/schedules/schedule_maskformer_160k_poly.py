# MaskFormer ADE20K recipe of mmseg 1.2.2 (maskformer_r50-d32_8xb2-160k_ade20k-512x512.py): AdamW lr 1e-4,
# weight decay 1e-4 (norms and embeddings included: mmseg's recipe sets no exception but the backbone's lr
# x0.1), gradient clipping 0.01, poly lr (power 0.9) over 160k iterations, validation every 16k (mmseg's
# schedule_160k.py). Iteration settings are fractions of train_cfg.max_iters (m2f_mm/config/schedule.py).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.0001),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=1.0, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=16000 / 160000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
