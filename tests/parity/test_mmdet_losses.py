"""Parity with mmdet 3.3.0's Mask2FormerHead.loss_by_feat: same seed -> same points, same
assignments, same losses (every term of every prediction set within 1e-4 relative).

One deliberate difference: the mask-loss normaliser (see ``mmdet_mask_normaliser``).
"""
import warnings

import pytest
import torch
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.models.task_modules.assigners import HungarianAssigner
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from m2f_mm.models.criterion import M2FCriterion
from m2f_mm.models.matching import M2FHungarianMatcher
from m2f_mm.models.targets import panoptic_targets

NUM_THINGS, NUM_STUFF = 3, 2
C = NUM_THINGS + NUM_STUFF
NUM_POINTS = 96  # oversampled to 288 candidates, 72 kept + 24 fresh per matched mask
FEAT = 32


def mmdet_head(num_queries: int) -> Mask2FormerHead:
    register_all_modules(init_default_scope=False)
    attn = dict(embed_dims=FEAT, num_heads=4, dropout=0.0, batch_first=True)
    ffn = dict(embed_dims=FEAT, feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
               act_cfg=dict(type='ReLU', inplace=True))
    cfg = ConfigDict(
        in_channels=[8, 8, 8, 8], strides=[4, 8, 16, 32], feat_channels=FEAT, out_channels=FEAT,
        num_things_classes=NUM_THINGS, num_stuff_classes=NUM_STUFF, num_queries=num_queries,
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='MSDeformAttnPixelDecoder', num_outs=3, norm_cfg=dict(type='GN', num_groups=8),
            act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=1, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=FEAT, num_heads=4, num_levels=3, num_points=2,
                                   dropout=0.0, batch_first=True), ffn_cfg=ffn)),
            positional_encoding=dict(num_feats=FEAT // 2, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=FEAT // 2, normalize=True),
        transformer_decoder=dict(return_intermediate=True, num_layers=2, layer_cfg=dict(
            self_attn_cfg=attn, cross_attn_cfg=attn, ffn_cfg=ffn), init_cfg=None),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * C + [0.1]),
        loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=NUM_POINTS, oversample_ratio=3.0, importance_sample_ratio=0.75,
            assigner=dict(type='HungarianAssigner', match_costs=[
                dict(type='ClassificationCost', weight=2.0),
                dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='MaskPseudoSampler')))
    return Mask2FormerHead(**cfg)


def batch_gts(h: int, w: int, seed: int, empty_second: bool = False, many: int = 0):
    """Image 0: 3 things + stuff from a semantic map; image 1: things only (or none / many)."""
    gen = torch.Generator().manual_seed(seed)
    H, W = 4 * h, 4 * w
    sem = torch.full((H, W), 255, dtype=torch.long)
    sem[:H // 2] = 3
    sem[H // 2:, : W // 2] = 4
    things0 = torch.zeros(3, H, W, dtype=torch.bool)
    for i in range(3):
        y, x = torch.randint(0, H - 8, (1, ), generator=gen), torch.randint(0, W - 8, (1, ),
                                                                          generator=gen)
        things0[i, y:y + 5 + 2 * i, x:x + 6] = True
        sem[things0[i]] = i
    labels0, masks0 = panoptic_targets(torch.tensor([0, 1, 2]), things0, sem, NUM_THINGS,
                                       NUM_STUFF)
    n1 = 0 if empty_second else (many or 2)
    labels1 = torch.randint(0, NUM_THINGS, (n1, ), generator=gen)
    masks1 = torch.rand(n1, H, W, generator=gen) > 0.7
    return [labels0, labels1], [masks0, masks1]


def detached(data: InstanceData) -> InstanceData:
    return InstanceData(**{key: value.detach().clone() for key, value in data.items()})


def run_both(seed: int, num_queries: int, empty_second=False, many=0, num_sets=3, h=10, w=12):
    head = mmdet_head(num_queries)
    gen = torch.Generator().manual_seed(100 + seed)
    cls = torch.randn(num_sets, 2, num_queries, C + 1, generator=gen) * 2
    masks = torch.randn(num_sets, 2, num_queries, h, w, generator=gen) * 3
    labels, gt_masks = batch_gts(h, w, seed, empty_second, many)
    gt_instances = [InstanceData(labels=lab, masks=m.long()) for lab, m in zip(labels, gt_masks)]
    metas = [dict(batch_input_shape=(4 * h, 4 * w), img_shape=(4 * h, 4 * w))] * 2

    ref_assign = []
    original = head.assigner.assign

    def recording_assign(pred_instances, gt_instances, img_meta=None, **kw):
        result = original(pred_instances=pred_instances, gt_instances=gt_instances,
                          img_meta=img_meta, **kw)
        ref_assign.append((detached(pred_instances), detached(gt_instances), result))
        return result
    head.assigner.assign = recording_assign
    ref_cls, ref_masks = cls.clone().requires_grad_(), masks.clone().requires_grad_()
    torch.manual_seed(seed)
    ref = head.loss_by_feat(ref_cls, ref_masks, gt_instances, metas)

    criterion = M2FCriterion(num_classes=C, num_points=NUM_POINTS)
    ours_assign = []
    match_terms = criterion.assigner.match_terms

    def recording_match(terms, **kw):
        out = match_terms(terms, **kw)
        ours_assign.append(out)
        return out
    criterion.assigner.match_terms = recording_match
    our_cls, our_masks = cls.clone().requires_grad_(), masks.clone().requires_grad_()
    torch.manual_seed(seed)
    ours = criterion(list(our_cls), list(our_masks), labels, gt_masks)
    return (ref, ref_cls, ref_masks, ref_assign), (ours, our_cls, our_masks, ours_assign), head


def as_pairs(result):
    query_idx = torch.nonzero(result.gt_inds > 0).flatten()
    return query_idx.tolist(), (result.gt_inds[query_idx] - 1).tolist()


def mmdet_mask_normaliser(labels, num_queries: int) -> float:
    """mmdet 3.3 divides by matched pairs, counting an image without GT as 1 (MaskSamplingResult
    num_pos = max(pos, 1)); we divide by GT segments as the paper's code does."""
    return float(sum(max(min(num_queries, len(lab)), 1) for lab in labels))


@pytest.mark.parametrize('seed,num_queries,empty_second,many', [
    (0, 8, False, 0), (1, 8, True, 0), (2, 6, False, 9), (3, 10, False, 0)])
def test_losses_points_and_assignments_match_mmdet(seed, num_queries, empty_second, many):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # G > Q is warned about once
        (ref, ref_cls, ref_masks, ref_assign), (ours, our_cls, our_masks, ours_assign), _ = \
            run_both(seed, num_queries, empty_second, many)
    labels = batch_gts(10, 12, seed, empty_second, many)[0]
    factor = mmdet_mask_normaliser(labels, num_queries) / sum(len(lab) for lab in labels)
    if not empty_second and not many:
        assert factor == 1.0  # the usual case: identical normalisers
    ref = {k: v * factor if ('mask' in k or 'dice' in k) else v for k, v in ref.items()}
    assert list(ours) == list(ref)
    for key in ref:
        assert ours[key].item() == pytest.approx(ref[key].item(), rel=1e-4, abs=1e-7), key
    assert len(ours_assign) == len(ref_assign) == 3 * 2
    for (query_idx, gt_idx), (_, _, ref_result) in zip(ours_assign, ref_assign):
        assert (query_idx.tolist(), gt_idx.tolist()) == as_pairs(ref_result)
    # gradients agree too
    sum(ref.values()).backward()
    sum(ours.values()).backward()
    torch.testing.assert_close(our_cls.grad, ref_cls.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(our_masks.grad, ref_masks.grad, rtol=1e-4, atol=1e-6)


def test_assigner_equals_mmdet_hungarian_assigner_on_same_points():
    (_, _, _, ref_assign), _, head = run_both(seed=4, num_queries=8)
    ours = M2FHungarianMatcher(cls_weight=2.0, mask_weight=5.0, dice_weight=5.0)
    assert isinstance(head.assigner, HungarianAssigner)
    for index, (pred, gt, ref_result) in enumerate(ref_assign):
        query_idx, gt_idx = ours.assign(pred.scores, pred.masks, gt.labels, gt.masks,
                                        set_index=index // 2, image_index=index % 2)
        assert (query_idx.tolist(), gt_idx.tolist()) == as_pairs(ref_result)
        if len(gt) == 0:
            continue
        ref_cost = torch.stack([cost(pred, gt) for cost in head.assigner.match_costs]).sum(0)
        our_cost = ours.cost_terms(pred.scores, pred.masks, gt.labels, gt.masks).sum(0)
        torch.testing.assert_close(our_cost, ref_cost, rtol=1e-5, atol=1e-5)
