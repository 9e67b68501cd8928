# Mask2Former Swin-L (IN-21k, 384, window 12) on ADE20K panoptic segmentation, 200 queries, 640 crop,
# 160k iterations, batch 16 (paper: 48.1 PQ). The original's maskformer2_swin_large_IN21k_384_bs16_160k.yaml.
_base_ = ['./m2f_r50_8xb2-160k_ade20k-panoptic-640x640.py', '_base_/models/swin.py']
model = dict(backbone=dict(_base_.swin_l_in22k_official, _delete_=True),
             panoptic_head=dict(num_queries=200, in_channels=[192, 384, 768, 1536]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_custom_keys))
