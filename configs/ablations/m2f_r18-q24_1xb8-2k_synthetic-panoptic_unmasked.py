# Ablation of the main job: cross-attention over the whole image instead of the previous layer's masks.
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(transformer_decoder=dict(use_masked_attention=False)))
