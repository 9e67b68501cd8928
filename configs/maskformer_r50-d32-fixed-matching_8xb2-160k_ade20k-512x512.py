# MaskFormer R50 on ADE20K semantic segmentation with fixed matching instead of bipartite matching (the
# paper's matching ablation): 150 queries, query c always matched to the GT segment of class c
# (M2FFixedMatcher); otherwise MaskFormer's head and losses. 512 crop, 160k iterations at 8 GPUs x 2 images.
# The original's ADE20K recipe (Base-ADE20K-150.yaml): Mask2Former's data and schedule
# (m2f_r50_8xb2-160k_ade20k-512x512.py) but weight decay 1e-4 (norms and embeddings still without decay, the
# original's WEIGHT_DECAY_NORM / _EMBED 0).
_base_ = ['_base_/runtime_seg.py', '_base_/datasets/ade20k_semantic.py',
          '_base_/models/maskformer_baselines_r50_seg.py', '_base_/schedules/schedule_160k_poly.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(decode_head=dict(_delete_=True, **_base_.maskformer_fixed_matching_head))
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
