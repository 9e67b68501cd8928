# Ablation of the main job: every decoder layer attends to the 1/32 feature map only (no round-robin).
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(transformer_decoder=dict(feature_levels=[0])))
