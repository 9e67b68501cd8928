# Ablation of the main job: the three optimisation improvements off together (zero query features,
# self-attention first, dropout 0.1), the paper's "all three" row.
_base_ = ['../m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(
    learnable_query_features=False,
    transformer_decoder=dict(layer_cfg=dict(attention_order='self_first', dropout=0.1))))
