# MaskFormer on the synthetic semantic task without dropout in its DETR decoder (0.1 -> 0.0), all else the
# reference run's. With dropout, the queries' first self-attention sees identical (zero) features, so in training
# dropout's noise alone can tell the queries apart; with bipartite matching the model can learn to rely on that
# noise and predict the same thing with every query at test time (DETR's known eval-mode collapse). Without
# dropout the learnable query embeddings must do it (Mask2Former's decoder has no dropout).
_base_ = ['../maskformer_r18-q24_1xb8-2k_synthetic-semantic.py']
model = dict(decode_head=dict(transformer_decoder=dict(layer_cfg=dict(dropout=0.0))))
