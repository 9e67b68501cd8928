# Mask2Former Swin-B (IN-1k, 384) on ADE20K semantic segmentation, 640 crop, 160k iterations (paper:
# 52.4 mIoU; mmseg 52.44). Equivalent of mmseg 1.2.2's mask2former_swin-b-in1k-384x384-pre_8xb2-160k_ade20k-640x640.py,
# except that test images are padded to a multiple of 32 as in the original (mmseg: no padding).
_base_ = ['_base_/runtime_seg.py', '_base_/datasets/ade20k_semantic_640x640.py',
          '_base_/models/m2f_r50_seg.py', '_base_/schedules/schedule_160k_poly.py', '_base_/models/swin.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
pretrained = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_base_patch4_window12_384_20220317-55b0104a.pth'  # noqa
model = dict(
    data_preprocessor=dict(size=(640, 640)),
    backbone=dict(_base_.swin_b, _delete_=True, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_custom_keys))
