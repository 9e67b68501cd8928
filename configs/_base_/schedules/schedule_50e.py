# Mask2Former COCO recipe: AdamW 1e-4, wd 0.05, backbone lr x0.1, no decay on norms and
# query/level embeddings, grad clip 0.01, 368,750 iterations (50 epochs at batch 16), lr x0.1 twice.
# Milestones: the original's released config (and mmdet's), 327,778 / 355,092, not the paper text's
# 0.9 / 0.95 of training (331,875 / 350,312). The rule for such differences is in docs/model_zoo.md.
# Iteration settings are fractions of train_cfg.max_iters (m2f_mm/config/schedule.py): the recipe's numbers
# at 368,750 iterations, and the same proportions for any --cfg-options train_cfg.max_iters=N.
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            # substring match: the head's query_feat / query_embed / level_embed
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
            # ...but the pixel decoder's level embedding decays, as in the original (an nn.Parameter
            # there) and in mmdet (whose name for it, level_encoding, matches no key)
            'pixel_decoder.level_embed': dict(lr_mult=1.0, decay_mult=1.0),
        },
        norm_decay_mult=0.0),
    clip_grad=dict(max_norm=0.01, norm_type=2))

max_iters = 368750
param_scheduler = dict(
    type='MultiStepLR',
    begin=0,
    end=1.0,
    by_epoch=False,
    milestones=[327778 / max_iters, 355092 / max_iters],
    gamma=0.1)

interval = 5000
# evaluate every 5000 iterations, and once more at the very end
dynamic_intervals = [((max_iters // interval * interval + 1) / max_iters, 1.0)]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=interval / max_iters,
    dynamic_intervals=dynamic_intervals)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# base_batch_size = 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)
