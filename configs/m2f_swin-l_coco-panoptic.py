# Mask2Former Swin-L on COCO panoptic: the paper's best COCO model (57.8 PQ), by its short name.
#   python tools/train.py configs/m2f_swin-l_coco-panoptic.py
# The recipe, with its full OpenMMLab name, is m2f_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py:
# 200 queries, 100 epochs, 16 images per iteration, IN-22k 384 px window-12 backbone.
_base_ = ['./m2f_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py']
