# Ablation of the main job: 12 queries instead of 24.
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(num_queries=12))
