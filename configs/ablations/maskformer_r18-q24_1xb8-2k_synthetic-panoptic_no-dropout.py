# MaskFormer on the synthetic panoptic task without dropout in its DETR decoder (0.1 -> 0.0), all else the
# MaskFormer run's: the panoptic counterpart of maskformer_r18-q24_1xb8-2k_synthetic-semantic_no-dropout.py. With
# dropout the model can learn to tell its queries apart by dropout's noise (their first self-attention sees
# identical zero features) and score far lower in eval mode than with the same weights' dropout left on (one seed
# of three in the README's table).
_base_ = ['../maskformer_r18-q24_1xb8-2k_synthetic-panoptic.py']
model = dict(panoptic_head=dict(transformer_decoder=dict(layer_cfg=dict(dropout=0.0))))
