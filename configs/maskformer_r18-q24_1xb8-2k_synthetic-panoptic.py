# The synthetic benchmark's model with MaskFormer's head: m2f_r18-q24_1xb8-2k_synthetic-panoptic.py's backbone
# (ResNet-18 at a quarter width), data, schedule, optimizer, 24 queries and 64-wide transformer, with the
# MaskFormer head and criterion of _base_/models/maskformer_r50.py scaled down as m2f_tiny.py scales Mask2Former
# (_base_/models/maskformer_tiny.py): a 2-layer encoder in the FPN pixel decoder, 6 post-norm DETR decoder layers
# over the 1/32 map, focal + dice losses on whole masks. Only the head differs, so the two configs compare the
# heads on the same run.
_base_ = ['./m2f_r18-q24_1xb8-2k_synthetic-panoptic.py', '_base_/models/maskformer_tiny.py']
model = dict(
    panoptic_head=dict(
        _base_.maskformer_tiny_head,
        _delete_=True,
        type='M2FMaskFormerHead',
        num_things_classes=None,  # the dataset's (m2f_mm/config/data.py)
        num_stuff_classes=None))
