# Mask2Former Swin-L (IN-21k, 384, window 12) on Mapillary Vistas v1.2 panoptic segmentation, 200 queries,
# 1024 crop, 300k iterations, batch 16 (paper: 45.5 PQ, 60.8 mIoU). The original's
# maskformer2_swin_large_IN21k_384_bs16_300k.yaml (panoptic-segmentation/swin/).
_base_ = ['./m2f_r50_8xb2-300k_mapillary-panoptic-1024x1024.py', '_base_/models/swin.py']
model = dict(backbone=dict(_base_.swin_l_in22k_official, _delete_=True),
             panoptic_head=dict(num_queries=200, in_channels=[192, 384, 768, 1536]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_custom_keys))
