# MaskFormer R50 on ADE20K semantic segmentation with fixed matching instead of bipartite matching (the
# paper's matching ablation): 150 queries, query c always matched to the GT segment of class c
# (M2FFixedMatcher); otherwise MaskFormer's head and losses. 512 crop, 160k iterations at 8 GPUs x 2 images.
# Recipe: MaskFormer R50-D32's (configs/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py, mmseg's); only the head differs.
_base_ = ['maskformer_r50-d32_8xb2-160k_ade20k-512x512.py', '_base_/models/maskformer_baselines_heads.py']
model = dict(decode_head=dict(_delete_=True, **_base_.maskformer_fixed_matching_head))
