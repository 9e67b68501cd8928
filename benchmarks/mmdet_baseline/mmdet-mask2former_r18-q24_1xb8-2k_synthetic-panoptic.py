# The OpenMMLab baseline of the main job: mmdet 3.3.0's own Mask2Former (Mask2FormerHead, HungarianAssigner,
# MaskFormerFusionHead...) with our model's sizes, on the same data, schedule and metrics
# (m2f_mmdet_baseline.py beside this file builds it; `tools/demo/run_demo.py --baseline mmdet` trains it).
# Train it with this folder on PYTHONPATH, for custom_imports:
#   PYTHONPATH=benchmarks/mmdet_baseline python tools/train.py THIS_FILE
_base_ = ['../../configs/m2f_r18-q24_1xb8-2k_synthetic-panoptic.py']
custom_imports = dict(imports=['m2f_mm', 'm2f_mmdet_baseline'], allow_failed_imports=False)
model = dict(_delete_=True, type='M2FMMDetBaseline', module={{_base_.model}})
