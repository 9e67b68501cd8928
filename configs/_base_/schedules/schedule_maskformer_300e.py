# MaskFormer Swin-L COCO panoptic recipe of mmdet 3.3 (maskformer_swin-l-p4-w12_64xb1-ms-300e_coco.py):
# schedule_maskformer_75e.py's with AdamW lr 6e-5, weight decay 0.01, a linear warm-up over the first
# 1,500 iterations, 300 epochs at 64 images per iteration and lr x0.1 after epoch 250.
# Parameter-wise as mmdet's: norms, the query embedding and Swin's position tables without decay, the
# backbone at lr x0.1. mmdet's keys are kept as they are, with their effect: the longest matching key
# wins, so a backbone norm takes 'backbone' (lr x0.1, decayed) rather than 'norm'.
# An epoch is 1,843.75 iterations at 64 images (118,000 images, as schedule_maskformer_75e.py), so 553,125
# iterations; iteration settings are fractions of train_cfg.max_iters (m2f_mm/config/schedule.py).
_base_ = ['./schedule_maskformer_75e.py']
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    optimizer=dict(lr=6e-5, weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(lr_mult=1.0, decay_mult=0.0),
            'absolute_pos_embed': embed_multi,
            'relative_position_bias_table': embed_multi,
            'query_embed': embed_multi,
        },
        norm_decay_mult=0.0))

epochs = 300
max_iters = 553125  # 300 epochs x 118,000 images / 64
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500 / max_iters),
    dict(type='MultiStepLR', begin=0, end=1.0, by_epoch=False, milestones=[250 / epochs], gamma=0.1),
]
train_cfg = dict(max_iters=max_iters, val_interval=1 / epochs)

# base_batch_size = 64 GPUs x 1 image
auto_scale_lr = dict(base_batch_size=64)
