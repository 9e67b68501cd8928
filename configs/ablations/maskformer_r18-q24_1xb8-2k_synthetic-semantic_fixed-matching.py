# MaskFormer with fixed matching instead of bipartite matching on the synthetic semantic task: query c is
# always matched to the GT segment of class c (M2FFixedMatcher); queries past the class count are never
# matched. The 24 queries stay, so only the matcher differs from the MaskFormer run (the paper also gave
# fixed matching one query per class: 150 against 100).
_base_ = ['../maskformer_r18-q24_1xb8-2k_synthetic-semantic.py']
model = dict(decode_head=dict(criterion=dict(assigner=dict(type='M2FFixedMatcher'))))
