# MaskFormer R50 (+ 6-layer transformer encoder) on COCO panoptic, DETR multi-scale augmentation,
# 75 epochs at 16 GPUs x 1 image (paper: 46.5 PQ with 300 epochs at batch 64; mmdet's 75-epoch
# reproduction: 46.9). Reproduces mmdet 3.3's configs/maskformer/maskformer_r50_ms-16xb1-75e_coco.py
# (a panoptic config despite its `_coco` name) with m2f_mm's MaskFormer head.
_base_ = [
    '_base_/models/maskformer_r50.py',
    '_base_/datasets/coco_panoptic_ms.py',
    '_base_/schedules/schedule_maskformer_75e.py',
    '_base_/runtime_det.py',  # mmdet 3.3's hooks, env, visualizer, logging; M2FRunner
]
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'
