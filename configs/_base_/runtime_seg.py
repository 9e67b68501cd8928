# mmseg's runtime with the iteration-based hooks of mmseg's Mask2Former configs (checkpoint at every
# validation, i.e. every 5000 iterations of their schedules, keep the best mIoU), run by M2FRunner (./m2f_runner.py).
_base_ = ['mmseg::_base_/default_runtime.py', './m2f_runner.py']
env_cfg = dict(dist_cfg=dict(backend='auto'))  # nccl with CUDA, gloo without
custom_hooks = [dict(type='M2FPretrainedCheckHook')]  # a missing local pretrained file: fail naming the option
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # interval=None: at every validation (train_cfg.val_interval; m2f_mm/config/schedule.py)
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=None, save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
