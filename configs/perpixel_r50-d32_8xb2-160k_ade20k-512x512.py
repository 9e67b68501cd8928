# MaskFormer's per-pixel baseline (PerPixelBaselineHead) with R50 on ADE20K semantic segmentation, 512 crop,
# 160k iterations at 8 GPUs x 2 images: MaskFormer's pixel decoder + a 1x1 conv classifier, per-pixel
# cross-entropy (the original's configs/ade20k-150/per_pixel_baseline_R50_bs16_160k.yaml).
# Recipe: MaskFormer R50-D32's (configs/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py, mmseg's); only the head differs.
_base_ = ['maskformer_r50-d32_8xb2-160k_ade20k-512x512.py', '_base_/models/maskformer_baselines_heads.py']
model = dict(decode_head=dict(_delete_=True, **_base_.per_pixel_head))
