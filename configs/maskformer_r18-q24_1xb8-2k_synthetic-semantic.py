# MaskFormer on the synthetic benchmark's semantic task, as an mmsegmentation EncoderDecoder: the data, schedule,
# optimizer and backbone of m2f_r18-q24_1xb8-2k_synthetic-semantic.py (Mask2Former's), with MaskFormer's head
# scaled down (_base_/models/maskformer_tiny.py, as in maskformer_r18-q24_1xb8-2k_synthetic-panoptic.py). Only
# the head differs, so the two compare the heads; configs/ablations/ swaps it for the per-pixel baselines and
# for fixed matching (MaskFormer's Table 4).
_base_ = ['./m2f_r18-q24_1xb8-2k_synthetic-semantic.py', '_base_/models/maskformer_tiny.py']
model = dict(decode_head=dict(
    _base_.maskformer_tiny_head,
    _delete_=True,
    type='M2FMaskFormerSegHead',
    num_classes=None,  # the dataset's: annotations/classes.json (m2f_mm/config/)
    align_corners=False))
