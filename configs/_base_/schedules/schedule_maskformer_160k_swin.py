# MaskFormer Swin-T/S ADE20K recipe of mmseg 1.2.2 (maskformer_swin-{t,s}_upernet_8xb2-160k_ade20k-512x512.py):
# AdamW lr 6e-5, weight decay 0.01, the backbone at the full lr, no decay on the backbone's norms, Swin's
# relative position tables and the query embedding (the head's norms do decay, as in mmseg's recipe),
# gradient clipping 0.01, a linear warm-up over 1,500 iterations then linear decay (poly, power 1) to
# 160k. 'blocks.{i}.norm' covers norm1 / norm2 of block i in every stage (mmseg lists them per stage and
# depth; same parameters). Iteration settings are fractions of train_cfg.max_iters (m2f_mm/config/schedule.py).
_base_ = ['./schedule_maskformer_160k_poly.py']
backbone_no_decay = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=1.0),
        'backbone.patch_embed.norm': backbone_no_decay,
        'backbone.norm': backbone_no_decay,
        'relative_position_bias_table': backbone_no_decay,
        'query_embed': dict(decay_mult=0.0),
        'downsample.norm': backbone_no_decay,
        **{f'blocks.{i}.norm': backbone_no_decay for i in range(18)},
    }))
warmup = 1500 / 160000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=warmup, end=1.0, by_epoch=False),
]
