# Ablation of the main job: queries start from zero features (the query set 0 is not supervised).
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(learnable_query_features=False))
