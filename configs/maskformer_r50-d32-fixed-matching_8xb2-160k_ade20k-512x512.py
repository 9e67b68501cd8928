# MaskFormer R50 on ADE20K semantic segmentation with fixed matching instead of bipartite matching (the
# paper's matching ablation): 150 queries, query c always matched to the GT segment of class c
# (M2FFixedMatcher); otherwise MaskFormer's head and losses. 512 crop, 160k iterations at 8 GPUs x 2 images.
# Recipe: MaskFormer R50-D32's (configs/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py, mmseg's); only the head differs.
_base_ = ['maskformer_r50-d32_8xb2-160k_ade20k-512x512.py']
# one query per class (ADE20K: 150; the fixed matcher refuses fewer queries than classes)
model = dict(decode_head=dict(num_queries=150, criterion=dict(assigner=dict(type='M2FFixedMatcher'))))
