# Ablation of the main job: matching costs on the full masks, mask losses on sampled points (mask-point).
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(criterion=dict(match_on='masks', loss_on='points')))
