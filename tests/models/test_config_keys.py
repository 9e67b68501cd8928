"""Every config key is honoured or refused with an error naming it (nothing is dropped silently)."""
import copy

import pytest
import torch
from mmengine.structures import InstanceData

from m2f_mm.evaluation.metrics import M2FCocoPanopticMetric
from m2f_mm.models.detector import M2FDetector
from m2f_mm.models.head import M2FHead
from m2f_mm.models.fusion import M2FFusionHead
from m2f_mm.models.mmdet_compat import decoder_layer_kwargs, encoder_layer_kwargs, sine_encoding_kwargs
from m2f_mm.registry import MODELS

D = 32
HEAD = dict(in_channels=[8, 16, 32, 64], strides=[4, 8, 16, 32], feat_channels=D, out_channels=D, num_things_classes=2,
            num_stuff_classes=1, num_queries=4,
            pixel_decoder=dict(type='M2FPixelDecoder', norm_cfg=dict(type='GN', num_groups=8),
                               encoder=dict(num_layers=1, layer_cfg=dict(embed_dims=D, num_heads=2,
                                                                         feedforward_channels=16))),
            transformer_decoder=dict(num_layers=3, layer_cfg=dict(embed_dims=D, num_heads=2, feedforward_channels=16)),
            positional_encoding=dict(num_feats=D // 2, normalize=True))


def _head(**changes):
    return M2FHead(**dict(copy.deepcopy(HEAD), **changes))


def test_positional_encoding_type_other_than_sine_is_refused():
    assert sine_encoding_kwargs(dict(type='SinePositionalEncoding', num_feats=8, normalize=True), 16, 'pe') == dict(
        num_feats=8, normalize=True)
    with pytest.raises(ValueError, match=r"positional_encoding\.type='LearnedPositionalEncoding'"):
        _head(positional_encoding=dict(type='LearnedPositionalEncoding', num_feats=D // 2))
    with pytest.raises(ValueError, match=r"pixel_decoder\.positional_encoding\.type='LearnedPositionalEncoding'"):
        M2FHead(**dict(HEAD, pixel_decoder=dict(HEAD['pixel_decoder'], positional_encoding=dict(
            type='LearnedPositionalEncoding', num_feats=D // 2))))


def test_norm_cfg_other_than_layer_norm_is_refused():
    assert decoder_layer_kwargs(dict(embed_dims=8, norm_cfg=dict(type='LN'))) == dict(embed_dims=8)
    with pytest.raises(ValueError, match=r"transformer_decoder\.layer_cfg\.norm_cfg=\{'type': 'BN'\}"):
        decoder_layer_kwargs(dict(embed_dims=8, norm_cfg=dict(type='BN')))
    mmdet_layer = dict(self_attn_cfg=dict(embed_dims=8, num_heads=2, dropout=0.0, batch_first=True),
                       ffn_cfg=dict(embed_dims=8, feedforward_channels=16, num_fcs=2, ffn_drop=0.0),
                       norm_cfg=dict(type='GN'))
    with pytest.raises(ValueError, match=r'encoder\.layer_cfg\.norm_cfg'):
        encoder_layer_kwargs(mmdet_layer)
    with pytest.raises(ValueError, match=r'dropout is not supported'):
        encoder_layer_kwargs(dict(mmdet_layer, norm_cfg=None, self_attn_cfg=dict(embed_dims=8, dropout=0.1)))


def test_fusion_head_refuses_unknown_keys_and_test_cfg_keys():
    M2FFusionHead(num_things_classes=2, num_stuff_classes=1, loss_panoptic=None)  # mmdet's configs carry it
    with pytest.raises(TypeError, match='score_thr'):
        MODELS.build(dict(type='M2FFusionHead', score_thr=0.5))
    with pytest.raises(ValueError, match='loss_panoptic'):
        M2FFusionHead(loss_panoptic=dict(type='CrossEntropyLoss'))
    with pytest.raises(ValueError, match=r"test_cfg: unknown key 'mask_thr'"):
        M2FFusionHead(test_cfg=dict(panoptic_on=True, mask_thr=0.5))


def test_metric_refuses_unknown_keys():
    M2FCocoPanopticMetric(backend_args=None)
    with pytest.raises(TypeError, match='nproc'):
        M2FCocoPanopticMetric(nproc=8)


def _detector_cfg(**changes):
    cfg = dict(backbone=dict(type='ResNet', depth=18, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                             init_cfg=None),
               panoptic_head=dict(HEAD, type='M2FHead', criterion=dict(type='M2FCriterion', num_points=16)),
               panoptic_fusion_head=dict(type='M2FFusionHead'), train_cfg=dict(),
               test_cfg=dict(panoptic_on=True), data_preprocessor=dict(type='DetDataPreprocessor'))
    cfg.update(changes)
    return cfg


def test_a_missing_or_unregistered_fusion_head_fails_at_build():
    with pytest.raises(ValueError, match=r"needs panoptic_fusion_head=dict\(type='M2FFusionHead'\)"):
        M2FDetector(**_detector_cfg(panoptic_fusion_head=None))
    with pytest.raises(KeyError, match="'MyFusion' is not registered"):
        M2FDetector(**_detector_cfg(panoptic_fusion_head=dict(type='MyFusion')))


def test_no_silent_padded_size_guess():
    from mmdet.structures import DetDataSample
    head = _head(criterion=dict(type='M2FCriterion', num_points=16))
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64)))
    sample.gt_instances = InstanceData(labels=torch.tensor([0]), masks=torch.ones(1, 64, 64, dtype=torch.bool))
    with pytest.raises(KeyError, match='batch_input_shape'):
        head.get_targets([sample], torch.device('cpu'))
    fusion = M2FFusionHead(num_things_classes=2, num_stuff_classes=1)
    with pytest.raises(KeyError, match='batch_input_shape'):
        fusion.predict(torch.randn(1, 4, 4), torch.randn(1, 4, 16, 16), [dict(img_shape=(64, 64), ori_shape=(64, 64))])


def test_an_image_without_annotation_entry_is_named(tmp_path):
    import json
    (tmp_path / 'gt.json').write_text(json.dumps(dict(images=[dict(id=3, file_name='x.jpg', height=2, width=2)],
                                                      annotations=[], categories=[dict(id=1, name='a', isthing=1)])))
    metric = M2FCocoPanopticMetric(ann_file=str(tmp_path / 'gt.json'), seg_prefix=str(tmp_path))
    metric.dataset_meta = dict(classes=('a', ), thing_classes=('a', ), stuff_classes=())
    pred = dict(img_id=3, img_path='x.jpg', pred_panoptic_seg=dict(sem_seg=torch.zeros(1, 2, 2, dtype=torch.int)))
    with pytest.raises(KeyError, match=r'image id 3 \(x\.jpg\).*has no entry in its annotations'):
        metric.process({}, [pred])


def _counting(forward, count):
    def counted(*args, **kwargs):
        count[0] += 1
        return forward(*args, **kwargs)
    return counted


def test_activation_checkpointing_gives_the_same_outputs_and_gradients():
    """pixel_decoder.encoder.num_cp (mmdet's key) is honoured: same numbers, activations recomputed."""
    from m2f_mm.models.pixel_decoder import M2FPixelDecoder
    torch.manual_seed(0)
    cfg = dict(in_channels=[8, 16, 32, 64], feat_channels=D, out_channels=D, norm_cfg=dict(type='GN', num_groups=8),
               encoder=dict(num_layers=2, layer_cfg=dict(embed_dims=D, num_heads=2, feedforward_channels=16)))
    plain = M2FPixelDecoder(**cfg).train()
    plain.init_weights()
    checkpointed = M2FPixelDecoder(**dict(cfg, encoder=dict(cfg['encoder'], num_cp=2))).train()
    checkpointed.load_state_dict(plain.state_dict())
    feats = [torch.randn(2, c, 64 // s, 48 // s) for c, s in zip([8, 16, 32, 64], [4, 8, 16, 32])]
    grads, calls = [], []
    for model in (plain, checkpointed):
        count, layer = [0], model.encoder.layers[0]
        layer.forward = _counting(layer.forward, count)
        mask_features, multi_scale = model(feats)
        (mask_features.square().mean() + sum(m.mean() for m in multi_scale)).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        calls.append(count[0])
    assert calls == [1, 2]  # the checkpointed layer ran again in backward: its activations were not kept
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5), name
    with pytest.raises(ValueError, match=r'num_cp must be in \[0, num_layers=2\]'):
        M2FPixelDecoder(**dict(cfg, encoder=dict(cfg['encoder'], num_cp=3)))
