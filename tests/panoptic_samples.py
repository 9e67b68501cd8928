"""A small panoptic training sample (two thing instances, one stuff region, an ignored area) for the
parity tests against mmdet's Mask2Former and MaskFormer."""
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData


def gt_sample(h: int, w: int, seed: int):
    """Two thing instances + one stuff region (+ an ignored area) for one image."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((2, h, w), dtype=np.uint8)
    y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
    masks[0, y:y + h // 3, x:x + w // 3] = 1
    masks[1, h // 2:, w // 2:] = 1
    sem = torch.full((1, h, w), 255, dtype=torch.long)
    sem[0, : h // 2, w // 2:] = 80 + 7  # stuff class 87
    sem[0, masks[1].astype(bool)] = 3
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(labels=torch.tensor([5, 3]), masks=BitmapMasks(masks, h, w),
                                       bboxes=torch.zeros(2, 4))
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    return sample
