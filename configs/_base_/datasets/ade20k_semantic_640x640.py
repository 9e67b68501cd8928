# ADE20K semantic segmentation at 640 px (the Swin-B/L recipes): ade20k_semantic.py's augmentation
# scaled to 640 (short side 320..1280, long side at most 2560, 640 crop); test short side 640.
_base_ = ['./ade20k_semantic.py']
crop_size = (640, 640)
train_pipeline = list(_base_.train_pipeline)
train_pipeline[2] = dict(train_pipeline[2], scales=[int(crop_size[0] * x * 0.1) for x in range(5, 21)],
                         max_size=4 * crop_size[0])
train_pipeline[3] = dict(train_pipeline[3], crop_size=crop_size)
test_pipeline = list(_base_.test_pipeline)
test_pipeline[1] = dict(test_pipeline[1], scale=(2560, 640))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
