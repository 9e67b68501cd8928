"""Panoptic / instance / semantic targets: contents, order, and errors on malformed annotations."""
import numpy as np
import pytest
import torch
from mmdet.models.utils import preprocess_panoptic_gt
from mmdet.structures.mask import BitmapMasks

from m2f_mm.models.targets import panoptic_targets, semantic_targets

NUM_THINGS, NUM_STUFF, IGNORE = 3, 2, 255  # things 0-2, stuff 3-4


def _scene():
    """6x5 image: two thing instances (classes 2 and 0), stuff 4 and 3, some void."""
    sem = torch.tensor([[4, 4, 4, 4, 4],
                        [4, 2, 2, 4, 4],
                        [3, 2, 2, 0, 0],
                        [3, 3, 3, 0, 0],
                        [3, 3, 255, 255, 3],
                        [3, 3, 3, 3, 3]])
    things = torch.stack([sem == 2, sem == 0])
    return torch.tensor([2, 0]), things, sem


def test_panoptic_things_then_stuff_ascending():
    labels, things, sem = _scene()
    out_labels, out_masks = panoptic_targets(labels, things, sem, NUM_THINGS, NUM_STUFF)
    assert out_labels.tolist() == [2, 0, 3, 4]
    assert out_masks.dtype == torch.bool and out_masks.shape == (4, 6, 5)
    assert torch.equal(out_masks[:2], things)
    assert torch.equal(out_masks[2], sem == 3) and torch.equal(out_masks[3], sem == 4)
    assert int(out_masks[2].sum()) == 12 and int(out_masks[3].sum()) == 8
    # void and thing pixels of the semantic map belong to no stuff segment
    assert not bool(out_masks[2:, 4, 2:4].any()) and not bool(out_masks[2:, 1, 1].any())


def test_panoptic_same_segments_as_mmdet():
    labels, things, sem = _scene()
    ours = panoptic_targets(labels, things, sem[None], NUM_THINGS, NUM_STUFF)  # [1,H,W] accepted
    ref_labels, ref_masks = preprocess_panoptic_gt(
        labels, BitmapMasks(things.numpy().astype(np.uint8), 6, 5), sem[None], NUM_THINGS,
        NUM_STUFF)
    ref = {(int(lab), m.bool().numpy().tobytes()) for lab, m in zip(ref_labels, ref_masks)}
    got = {(int(lab), m.numpy().tobytes()) for lab, m in zip(*ours)}
    assert got == ref and len(got) == 4


def test_instance_targets_and_mask_containers():
    labels, things, sem = _scene()
    out_labels, out_masks = panoptic_targets(labels, things.long(), None, NUM_THINGS, NUM_STUFF)
    assert out_labels.tolist() == [2, 0] and torch.equal(out_masks, things)
    bitmap = BitmapMasks(things.numpy().astype(np.uint8), 6, 5)
    assert torch.equal(panoptic_targets(labels, bitmap, sem, 3, 2)[1][:2], things)
    as_list = panoptic_targets(labels, [things[0], things[1]], sem, 3, 2)
    assert as_list[0].tolist() == [2, 0, 3, 4]
    # no things: stuff only; nothing at all: empty
    stuff_only = panoptic_targets(torch.zeros(0, dtype=torch.long), torch.zeros(0, 6, 5), sem, 3, 2)
    assert stuff_only[0].tolist() == [3, 4] and stuff_only[1].shape == (2, 6, 5)
    void = torch.full((6, 5), IGNORE)
    empty = panoptic_targets(torch.zeros(0, dtype=torch.long), [], void, 3, 2)
    assert empty[0].numel() == 0 and empty[1].shape[0] == 0


def test_panoptic_errors_name_the_field_and_image():
    labels, things, sem = _scene()
    with pytest.raises(ValueError, match=r'thing_masks.*sem_seg.*\(image 3\)'):
        panoptic_targets(labels, things[:, :5], sem, 3, 2, image_index=3)
    with pytest.raises(ValueError, match=r'thing_masks\[1\].*\(image 0\)'):
        panoptic_targets(labels, [things[0], things[1, :, :4]], sem, 3, 2, image_index=0)
    with pytest.raises(ValueError, match=r'thing_labels.*\[7\].*\[0, 5\).*\(image 2\)'):
        panoptic_targets(torch.tensor([2, 7]), things, sem, 3, 2, image_index=2)
    with pytest.raises(ValueError, match=r'thing_labels.*-1'):
        panoptic_targets(torch.tensor([-1, 0]), things, sem, 3, 2)
    bad_sem = sem.clone()
    bad_sem[0, 0] = 9
    with pytest.raises(ValueError, match=r'sem_seg.*\[9\].*ignore_index=255.*\(image 1\)'):
        panoptic_targets(labels, things, bad_sem, 3, 2, image_index=1)
    with pytest.raises(ValueError, match='2 labels'):
        panoptic_targets(labels, things[:1], sem, 3, 2)
    with pytest.raises(ValueError, match='sem_seg must be'):
        panoptic_targets(labels, things, sem[None, None], 3, 2)


def test_semantic_targets_ascending_and_validated():
    sem = torch.tensor([[5, 5, 1], [255, 1, 0], [0, 0, 5]], dtype=torch.uint8)
    labels, masks = semantic_targets(sem)
    assert labels.tolist() == [0, 1, 5] and labels.dtype == torch.long
    assert masks.shape == (3, 3, 3) and masks.dtype == torch.bool
    for lab, mask in zip(labels.tolist(), masks):
        assert torch.equal(mask, sem == lab)
    assert not bool(masks[:, 1, 0].any())  # void pixel
    assert semantic_targets(sem[None], num_classes=6)[0].tolist() == [0, 1, 5]
    with pytest.raises(ValueError, match=r'sem_seg.*\[5\].*\[0, 5\).*\(image 4\)'):
        semantic_targets(sem, num_classes=5, image_index=4)
    assert semantic_targets(torch.full((2, 2), 255))[0].numel() == 0
    other_void = semantic_targets(torch.where(sem == 255, 1, sem), ignore_index=5, num_classes=5)
    assert other_void[0].tolist() == [0, 1]
