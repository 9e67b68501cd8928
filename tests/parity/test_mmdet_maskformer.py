"""Numerical parity with mmdet 3.3.0's in-tree MaskFormer (R50, TransformerEncoder pixel decoder,
100 queries, 80 + 53 classes).

mmdet's model is built from its own config (maskformer_r50_ms-16xb1-75e_coco.py), ours from
configs/maskformer_r50_ms-16xb1-75e_coco-panoptic.py resolved as a run resolves it; weights go through
convert_mmdet_to_m2f and load strictly. Both run in eval mode (no dropout) on the same batch of two
differently sized images padded to one size (mmdet's recipe pads to a multiple of 1, so image 0 has
padding the decoder must ignore). All 6 prediction sets, the 18 losses, gradients and the panoptic
results must agree: max |ours - mmdet| <= 1e-4 * max(1, max |mmdet|).
"""
import os.path as osp

import mmdet
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from m2f_mm.checkpoints import convert_mmdet_to_m2f
from m2f_mm.config import load_resolved

from panoptic_samples import gt_sample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMDET_CFG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'maskformer',
                     'maskformer_r50_ms-16xb1-75e_coco.py')
OUR_CFG = osp.join(REPO, 'configs', 'maskformer_r50_ms-16xb1-75e_coco-panoptic.py')
SIZES = [(48, 64), (96, 124)]  # padded together to 96 x 124: image 0 carries padding even at 1/32
NUM_SETS = 6


@pytest.fixture(scope='module')
def models_and_batch():
    import mmdet.models  # noqa: F401  registers mmdet's MaskFormer
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    import m2f_mm  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref_cfg = Config.fromfile(MMDET_CFG)
        ref_cfg.model.backbone.init_cfg = None  # no download
        torch.manual_seed(0)
        ref = MODELS.build(ref_cfg.model)
        ref.init_weights()
        with torch.no_grad():  # random, non-degenerate weights everywhere in the head
            for p in ref.panoptic_head.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        ref.eval()
        our_cfg = load_resolved(OUR_CFG)
        our_cfg.model.backbone.init_cfg = None
        ours = MODELS.build(our_cfg.model).eval()
    converted, unmapped = convert_mmdet_to_m2f(ref.state_dict())
    ours.load_state_dict(converted, strict=True)

    torch.manual_seed(1)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in SIZES]
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
               for h, w in SIZES]
    batch = ref.data_preprocessor(dict(inputs=images, data_samples=samples), False)
    return ref, ours, unmapped, batch


def _close(ours: torch.Tensor, ref: torch.Tensor, what: str, rel: float = 1e-4) -> None:
    tol = rel * max(1.0, ref.abs().max().item())
    diff = (ours.float() - ref.float()).abs().max().item()
    assert diff <= tol, f'{what} differ by {diff:.3g} > {tol:.3g}'


def test_every_mmdet_tensor_is_mapped(models_and_batch):
    ref, ours, unmapped, _ = models_and_batch
    assert unmapped == []
    assert len(ref.state_dict()) == len(ours.state_dict())


def test_all_prediction_sets_match_mmdet(models_and_batch):
    ref, ours, _, batch = models_and_batch
    inputs, samples = batch['inputs'], batch['data_samples']
    assert tuple(inputs.shape) == (2, 3, 96, 124)
    with torch.no_grad():
        ref_cls, ref_mask = ref._forward(inputs, samples)
        our_cls, our_mask = ours._forward(inputs, samples)
    assert ref_cls.shape[0] == len(our_cls) == len(our_mask) == NUM_SETS  # mmdet stacks the sets
    for i in range(NUM_SETS):
        assert our_cls[i].shape == ref_cls[i].shape == (2, 100, 134)
        assert our_mask[i].shape == ref_mask[i].shape == (2, 100, 24, 31)
        _close(our_cls[i], ref_cls[i], f'set {i} class logits')
        _close(our_mask[i], ref_mask[i], f'set {i} mask logits')


def test_padding_changes_the_result(models_and_batch):
    """The comparison above covers padding only if padding matters: without the padding mask, image 0's
    predictions change."""
    _, ours, _, batch = models_and_batch
    inputs, samples = batch['inputs'], batch['data_samples']
    with torch.no_grad():
        feats = ours.extract_feat(inputs)
        with_mask = ours.panoptic_head(feats, samples)[0][-1]
        ours.panoptic_head.uses_padding_mask = False
        try:
            without = ours.panoptic_head(feats, samples)[0][-1]
        finally:
            ours.panoptic_head.uses_padding_mask = True
    assert (with_mask[0] - without[0]).abs().max() > 1e-3
    torch.testing.assert_close(with_mask[1], without[1])  # image 1 fills the batch: no padding



def test_losses_matching_and_gradients_match_mmdet(models_and_batch):
    """Targets, matching at the mask resolution (GT nearest-downsampled), focal + dice on the upsampled
    full masks, cross-entropy with the no-object weight, on all 6 sets; eval mode so dropout is off."""
    ref, ours, _, _ = models_and_batch
    torch.manual_seed(1)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in SIZES]
    losses, grads = [], []
    for model, names in ((ref, ('cls_embed.weight', 'pixel_decoder.encoder_in_proj.weight', 'query_embed.weight')),
                         (ours, ('class_embed.weight', 'pixel_decoder.encoder_in_proj.weight', 'query_embed.weight'))):
        model.zero_grad()
        data = model.data_preprocessor(
            dict(inputs=images, data_samples=[gt_sample(h, w, i) for i, (h, w) in enumerate(SIZES)]), True)
        loss = model.loss(data['inputs'], data['data_samples'])
        sum(loss.values()).backward()
        losses.append(loss)
        params = dict(model.panoptic_head.named_parameters())
        grads.append([params[n].grad.clone() for n in names])
    ref_loss, our_loss = losses
    assert set(ref_loss) == set(our_loss) and len(our_loss) == 3 * NUM_SETS
    for key, value in ref_loss.items():
        assert abs(our_loss[key].item() - value.item()) <= 1e-4 * max(1.0, abs(value.item())), key
    assert our_loss['loss_mask'].item() > 0 and our_loss['loss_dice'].item() > 0
    for g_ref, g_our in zip(*grads):
        assert g_ref.abs().max() > 0
        _close(g_our, g_ref, 'gradient', rel=1e-3)


def test_panoptic_results_match_mmdet(models_and_batch):
    ref, ours, _, batch = models_and_batch
    inputs, samples = batch['inputs'], batch['data_samples']
    with torch.no_grad():
        ref_out = ref.predict(inputs, [s.clone() for s in samples])
        our_out = ours.predict(inputs, [s.clone() for s in samples])
    for r, o in zip(ref_out, our_out):
        assert torch.equal(r.pred_panoptic_seg.sem_seg, o.pred_panoptic_seg.sem_seg)
