# Mask2Former R50 on Mapillary Vistas v1.2 semantic segmentation (65 classes), 1024 crop, 300k iterations,
# batch 16 (paper: 57.4 mIoU). The original's configs/mapillary-vistas/semantic-segmentation/
# maskformer2_R50_bs16_300k.yaml; neither mmdet nor mmseg has it. Data: docs/model_zoo.md
# (tools/dataset_converters/mapillary.py).
_base_ = ['_base_/runtime_seg.py', '_base_/datasets/mapillary_semantic.py', '_base_/models/m2f_r50_seg.py',
          '_base_/schedules/schedule_300k_poly.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
num_classes = 65
model = dict(data_preprocessor=dict(size=(1024, 1024)), decode_head=dict(num_classes=num_classes))
