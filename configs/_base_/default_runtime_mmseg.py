# mmseg's default runtime (hooks, logging, visualizer) run by M2FRunner.
_base_ = ['mmseg::_base_/default_runtime.py', './m2f_runner.py']
env_cfg = dict(dist_cfg=dict(backend='auto'))  # nccl with CUDA, gloo without
