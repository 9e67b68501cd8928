# A tiny Mask2Former trained from scratch on the bundled synthetic data, on CPU: 2000 iterations of batch 8
# on 192 px images (docs/demo.md), sized to train in about 20 minutes on 2 cores.
# `make demo` (tools/demo/run_demo.py) generates the data, trains, evaluates PQ / mask AP / mIoU and draws.
_base_ = ['_base_/models/m2f_tiny.py', '_base_/datasets/synthetic_panoptic.py', '_base_/runtime_det.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

max_iters = 2000
# Schedule as fractions of train_cfg.max_iters (m2f_mm/config/schedule.py), so
# --cfg-options train_cfg.max_iters=N keeps warm-up, decays, validation and checkpoints in proportion.
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    type='OptimWrapper',
    # From scratch, so no backbone lr multiplier and a higher lr than the paper's 1e-4 fine-tuning.
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        custom_keys={'query_embed': embed_multi, 'query_feat': embed_multi, 'level_embed': embed_multi},
        norm_decay_mult=0.0),
    clip_grad=dict(max_norm=0.01, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=0.05),
    dict(type='MultiStepLR', begin=0, end=1.0, by_epoch=False, milestones=[0.9, 0.95], gamma=0.1),  # the paper's
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=0.25)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

custom_hooks = [dict(type='M2FClassCheckHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=0.25, max_keep_ckpts=2, save_last=True),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
randomness = dict(seed=0)
