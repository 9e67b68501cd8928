# MaskFormer Swin-L (IN-22k, 384, window 12) on COCO panoptic: plain FPN pixel decoder (no encoder), the
# decoder over Swin's 1/32 map projected to 256; 300 epochs at 64 GPUs x 1 image (paper: 52.7 PQ; mmdet
# 53.2). Reproduces mmdet 3.3's configs/maskformer/maskformer_swin-l-p4-w12_64xb1-ms-300e_coco.py.
# maskformer_r50_ms-16xb1-75e_coco-panoptic.py's model and data, the 300-epoch schedule
_base_ = ['_base_/models/maskformer_r50.py', '_base_/datasets/coco_panoptic_ms.py',
          '_base_/schedules/schedule_maskformer_300e.py', '_base_/runtime_det.py']
custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
default_scope = 'mmdet'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth'  # noqa
model = dict(
    backbone=dict(
        _delete_=True, type='SwinTransformer', pretrain_img_size=384, embed_dims=192, patch_size=4, window_size=12,
        mlp_ratio=4, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], qkv_bias=True, qk_scale=None, drop_rate=0.,
        attn_drop_rate=0., drop_path_rate=0.3, patch_norm=True, out_indices=(0, 1, 2, 3), with_cp=False,
        convert_weights=True,  # the official Swin release, converted on load
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    panoptic_head=dict(
        in_channels=[192, 384, 768, 1536],
        pixel_decoder=dict(_delete_=True, type='M2FMaskFormerPixelDecoder', norm_cfg=dict(type='GN', num_groups=32),
                           act_cfg=dict(type='ReLU')),
        enforce_decoder_input_project=True))
