# Ablation of the main job: mask losses on the full-resolution masks instead of sampled points.
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(criterion=dict(full_mask=True)))
