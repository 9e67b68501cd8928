# mmseg's runtime with the iteration-based hooks of mmseg's Mask2Former configs (checkpoint every
# 5000 iterations, keep the best mIoU), run by M2FRunner (./m2f_runner.py).
_base_ = ['mmseg::_base_/default_runtime.py', './m2f_runner.py']
env_cfg = dict(dist_cfg=dict(backend='auto'))  # nccl with CUDA, gloo without
custom_hooks = [dict(type='M2FPretrainedCheckHook')]  # a missing local pretrained file: fail naming the option
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
