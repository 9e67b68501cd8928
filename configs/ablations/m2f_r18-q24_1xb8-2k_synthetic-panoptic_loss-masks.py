# Ablation of the main job: matching costs on sampled points, mask losses on the full masks (point-mask).
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(criterion=dict(match_on='points', loss_on='masks')))
