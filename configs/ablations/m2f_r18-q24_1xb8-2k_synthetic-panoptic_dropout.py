# Ablation of the main job: DETR-style dropout 0.1 in the decoder layers (Mask2Former uses none).
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(transformer_decoder=dict(layer_cfg=dict(dropout=0.1))))
