# Ablation of the main job: DETR's order in every decoder layer, self-attention before the masked cross-attention.
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(transformer_decoder=dict(layer_cfg=dict(attention_order='self_first'))))
