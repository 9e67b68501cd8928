# mmdet's runtime for the iteration-based Mask2Former recipes, run by M2FRunner (./m2f_runner.py):
# checkpoint (and log) by iteration, and stop before the first step when the dataset's thing / stuff
# counts differ from the model's or a local pretrained file is missing.
_base_ = ['mmdet::_base_/default_runtime.py', './m2f_runner.py']
env_cfg = dict(dist_cfg=dict(backend='auto'))  # nccl with CUDA, gloo without
custom_hooks = [dict(type='M2FClassCheckHook'), dict(type='M2FPretrainedCheckHook')]
default_hooks = dict(
    # interval=None: at every validation (train_cfg.val_interval; m2f_mm/config/schedule.py)
    checkpoint=dict(type='CheckpointHook', by_epoch=False, save_last=True, max_keep_ckpts=3, interval=None))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
# An all-VOID panoptic map (e.g. an undertrained model) draws as the image instead of crashing mmdet's visualizer.
visualizer = dict(type='M2FDetLocalVisualizer')
