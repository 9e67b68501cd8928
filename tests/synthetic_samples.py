"""Small fixed training samples from the synthetic generator and the loop that fits a model to one batch,
shared by the learning tests."""
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

import m2f_mm  # noqa: F401
from m2f_mm.datasets.synthetic import CLASS_INDEX, STUFF_CLASSES, THING_CLASSES, THING_IDS, generate_scene, image_rng

NUM_THINGS, NUM_STUFF = len(THING_CLASSES), len(STUFF_CLASSES)


def synthetic_sample(index: int):
    scene = generate_scene(image_rng(3, 'train', index), 64, 64)
    thing_segments = [s for s in scene.segments if s['category_id'] in THING_IDS and not s['iscrowd']]
    masks = np.stack([scene.pan_ids == s['id'] for s in thing_segments]).astype(np.uint8)
    sem = np.full(scene.pan_ids.shape, 255, np.int64)
    for s in scene.segments:
        sem[scene.pan_ids == s['id']] = CLASS_INDEX[s['category_id']]
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        labels=torch.tensor([CLASS_INDEX[s['category_id']] for s in thing_segments]),
        masks=BitmapMasks(masks, 64, 64), bboxes=torch.zeros(len(thing_segments), 4))
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
    image = torch.from_numpy(scene.image).permute(2, 0, 1).contiguous()
    return image, sample


def fit_fixed_batch(model, data: dict, steps: int, lr: float) -> list:
    """``steps`` AdamW steps of ``model.loss`` on one preprocessed batch; the total loss of each step.

    Every step's total must be finite (a NaN would make the loss curve meaningless)."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    totals = []
    for _ in range(steps):
        losses = model.loss(data['inputs'], data['data_samples'])
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    return totals
