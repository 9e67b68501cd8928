"""Numerical parity with mmdet 3.3.0's in-tree Mask2Former (R50, 100 queries, 80 + 53 classes).

mmdet's model is built from its own config (mask2former_r50_8xb2-lsj-50e_coco-panoptic.py), ours
from configs/_base_/models/m2f_r50.py; weights go through convert_mmdet_to_m2f and load strictly.
Both run in eval mode on the same padded batch of two differently sized images (one not
divisible by 32), and all 10 prediction sets must agree:
max |ours - mmdet| <= 1e-4 * max(1, max |mmdet logit|).
"""
import os.path as osp

import mmdet
import pytest
import torch
from mmengine.config import Config

from m2f_mm.config import load_resolved
from mmengine.registry import DefaultScope

from m2f_mm.checkpoints import convert_mmdet_to_m2f
from m2f_mm.models.transformer_decoder import attention_mask_from_logits

from panoptic_samples import gt_sample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMDET_CFG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former',
                     'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py')
# the COCO panoptic leaf config, resolved as a run resolves it: 80 thing + 53 stuff classes, as mmdet's
OUR_CFG = osp.join(REPO, 'configs', 'm2f_r50_8xb2-lsj-50e_coco-panoptic.py')
SIZES = [(64, 96), (80, 100)]  # 100 is not a multiple of 32 -> the batch is padded to 96 x 128


@pytest.fixture(scope='module')
def models_and_batch():
    import mmdet.models  # noqa: F401  registers mmdet's Mask2Former
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    import m2f_mm.models.detector  # noqa: F401  registers M2FDetector / M2FHead / ...
    import m2f_mm.models.head  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref_cfg = Config.fromfile(MMDET_CFG)
        ref_cfg.model.backbone.init_cfg = None  # no download
        torch.manual_seed(0)
        ref = MODELS.build(ref_cfg.model)
        # Random, non-degenerate weights everywhere in the head: mmdet's init leaves MSDA's
        # offset / attention-weight layers at zero, which would hide mapping mistakes there.
        with torch.no_grad():
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


def test_every_mmdet_tensor_is_mapped(models_and_batch):
    ref, ours, unmapped, _ = models_and_batch
    assert unmapped == []
    assert len(ref.state_dict()) == len(ours.state_dict())


def test_all_prediction_sets_match_mmdet(models_and_batch):
    ref, ours, _, batch = models_and_batch
    inputs, samples = batch['inputs'], batch['data_samples']
    assert tuple(inputs.shape) == (2, 3, 96, 128)
    with torch.no_grad():
        ref_cls, ref_mask = ref._forward(inputs, samples)
        our_cls, our_mask = ours._forward(inputs, samples)
    assert len(ref_cls) == len(our_cls) == len(ref_mask) == len(our_mask) == 10
    for i in range(10):
        assert our_cls[i].shape == ref_cls[i].shape == (2, 100, 134)
        assert our_mask[i].shape == ref_mask[i].shape == (2, 100, 24, 32)
        for name, a, b in (('class', our_cls[i], ref_cls[i]), ('mask', our_mask[i], ref_mask[i])):
            tol = 1e-4 * max(1.0, b.abs().max().item())
            diff = (a - b).abs().max().item()
            assert diff <= tol, f'set {i} {name} logits differ by {diff:.3g} > {tol:.3g}'
    # The comparison only means something if masked attention actually masked: every layer's
    # mask must block a real share of the keys (neither nothing nor everything).
    for i in range(9):
        level_shape = [(3, 4), (6, 8), (12, 16)][i % 3]
        blocked = attention_mask_from_logits(ref_mask[i], level_shape).float().mean().item()
        assert 0.05 < blocked < 0.95, f'layer {i}: {blocked:.2f} of the keys blocked'


def test_predict_returns_last_set_not_upsampled(models_and_batch):
    _, ours, _, batch = models_and_batch
    with torch.no_grad():
        feats = ours.extract_feat(batch['inputs'])
        cls, mask = ours.panoptic_head.predict(feats, batch['data_samples'])
    assert cls.shape == (2, 100, 134) and mask.shape == (2, 100, 24, 32)



def test_training_losses_and_gradients_match_mmdet(models_and_batch):
    """Same seed -> same sampled points -> same 30 losses and gradients (targets, matching,
    point-sampled losses end to end; see CONTRACTS.md on the RNG order)."""
    pytest.importorskip('m2f_mm.models.criterion')
    ref, ours, _, _ = models_and_batch
    torch.manual_seed(1)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in SIZES]
    losses = []
    try:
        for model in (ref, ours):
            model.train()
            model.zero_grad()
            # ours' preprocessor for both (mmdet's config would pad to 1024 x 1024, LSJ), without the fixed-size
            # pad: the batch is still padded (to 96 x 128, image 0 only partly filled), at a 100th of the cost
            augments, ours.data_preprocessor.batch_augments = ours.data_preprocessor.batch_augments, None
            try:
                data = ours.data_preprocessor(
                    dict(inputs=images, data_samples=[gt_sample(h, w, i) for i, (h, w) in enumerate(SIZES)]), True)
            finally:
                ours.data_preprocessor.batch_augments = augments
            assert tuple(data['inputs'].shape[-2:]) == (96, 128)
            torch.manual_seed(0)
            loss = model.loss(data['inputs'], data['data_samples'])
            sum(loss.values()).backward()
            losses.append(loss)
    finally:
        ref.eval()
        ours.eval()
    ref_loss, our_loss = losses
    assert set(ref_loss) == set(our_loss) and len(our_loss) == 30
    for key, value in ref_loss.items():
        # (mmdet returns some losses as [1]-shaped tensors, ours are scalars: compare values)
        assert abs(our_loss[key].item() - value.item()) <= 1e-4 * max(1.0, abs(value.item())), key
    pairs = [('query_feat.weight', 'query_feat.weight'), ('cls_embed.weight', 'class_embed.weight'),
             ('pixel_decoder.input_convs.0.conv.weight', 'pixel_decoder.input_projs.0.conv.weight')]
    ref_params, our_params = dict(ref.panoptic_head.named_parameters()), dict(ours.panoptic_head.named_parameters())
    for ref_name, our_name in pairs:
        g_ref, g_our = ref_params[ref_name].grad, our_params[our_name].grad
        assert g_ref.abs().max() > 0
        tol = 1e-3 * g_ref.abs().max().item()
        assert (g_our - g_ref).abs().max().item() <= tol, our_name
