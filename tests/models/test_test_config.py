"""TestConfig: one set of test-time defaults, typos refused by every reader, values reach the fusion."""
import dataclasses
import inspect

import pytest
import torch
from mmengine.config import ConfigDict

import m2f_mm.models.fusion as fusion
import m2f_mm.models.seg_head as seg_head
from m2f_mm.errors import M2FConfigError
from m2f_mm.models.fusion import M2FFusionHead, fuse
from m2f_mm.models.maskformer_head import M2FMaskFormerSegHead
from m2f_mm.models.per_pixel_head import M2FPerPixelHead
from m2f_mm.models.seg_head import M2FSegHead
from m2f_mm.models.test_config import DEFAULTS, MMSEG_SEGMENTOR_KEYS, TestConfig, parse

D, C, Q = 16, 3, 4
IN_CHANNELS = [8, 8, 8, 8]
SEG_HEAD = dict(in_channels=IN_CHANNELS, strides=[4, 8, 16, 32], feat_channels=D, out_channels=D, num_classes=C,
                num_queries=Q,
                pixel_decoder=dict(type='M2FPixelDecoder', norm_cfg=dict(type='GN', num_groups=4),
                                   encoder=dict(num_layers=1, layer_cfg=dict(embed_dims=D, num_heads=2, num_points=1,
                                                                             feedforward_channels=16))),
                transformer_decoder=dict(num_layers=1, layer_cfg=dict(embed_dims=D, num_heads=2,
                                                                      feedforward_channels=16)),
                positional_encoding=dict(num_feats=D // 2, normalize=True))


def test_defaults_are_mmdet_fusion_defaults_and_the_functions_share_them():
    # mmdet 3.3 MaskFormerFusionHead.predict's literals, and m2f_mm's own two extras
    assert dataclasses.asdict(DEFAULTS) == dict(
        panoptic_on=True, instance_on=False, semantic_on=False, object_mask_thr=0.8, iou_thr=0.8, max_per_image=100,
        filter_low_score=False, query_chunk_size=16, semantic_scores=False)
    assert parse(None) == parse({}) == DEFAULTS and DEFAULTS.tasks == ('panoptic', )
    signature = inspect.signature(fuse).parameters
    for name, key in (('object_mask_thr', 'object_mask_thr'), ('iou_thr', 'iou_thr'), ('chunk', 'query_chunk_size'),
                      ('filter_low_score', 'filter_low_score'), ('max_per_image', 'max_per_image')):
        assert signature[name].default == getattr(DEFAULTS, key)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.iou_thr = 0.5


def test_parse_refuses_typos_with_a_close_match_and_bad_values():
    with pytest.raises(M2FConfigError, match=r"test_cfg: unknown key 'object_mask_th'; did you mean 'object_mask_thr'\?"
                                             r" \(M2FFusionHead reads panoptic_on, .*semantic_scores\)"):
        parse(dict(panoptic_on=True, object_mask_th=0.5))
    with pytest.raises(M2FConfigError, match=r'test_cfg.query_chunk_size=0: must be a positive integer'):
        parse(dict(query_chunk_size=0))
    with pytest.raises(M2FConfigError, match=r'test_cfg.iou_thr=1.5: must be a number in \[0, 1\]'):
        parse(dict(iou_thr=1.5))
    with pytest.raises(M2FConfigError, match=r"test_cfg.semantic_on='yes': must be True or False"):
        parse(dict(semantic_on='yes'))
    got = parse(ConfigDict(instance_on=True, object_mask_thr=0, mode='whole'), passthrough=MMSEG_SEGMENTOR_KEYS)
    assert got == dataclasses.replace(DEFAULTS, instance_on=True, object_mask_thr=0.0)
    assert got.tasks == ('panoptic', 'instance')


def test_fusion_head_refuses_a_typo_and_mmseg_keys():
    with pytest.raises(M2FConfigError, match=r"unknown key 'max_per_img'; did you mean 'max_per_image'"):
        M2FFusionHead(num_things_classes=1, num_stuff_classes=1, test_cfg=dict(max_per_img=10))
    with pytest.raises(M2FConfigError, match=r"unknown key 'mode'"):
        M2FFusionHead(num_things_classes=1, num_stuff_classes=1, test_cfg=dict(mode='whole'))
    head = M2FFusionHead(num_things_classes=1, num_stuff_classes=1, test_cfg=dict(iou_thr=0.5))
    assert head.test_cfg == dataclasses.replace(DEFAULTS, iou_thr=0.5)


def _fusion_results(**test_cfg):
    """Two thing queries over a 4 x 4 image: query 0 (class 0 with probability 0.88) covers the left
    half, query 1 (class 0, probability 0.67) the right half; the no-object logit is low for both."""
    cls_logits = torch.tensor([[[2.0, 0.0, -9.0], [0.7, 0.0, -9.0]]])           # [1, 2, C+1], C = 2
    mask_logits = torch.full((1, 2, 4, 4), -5.0)
    mask_logits[0, 0, :, :2] = 5.0
    mask_logits[0, 1, :, 2:] = 5.0
    meta = dict(batch_input_shape=(4, 4), img_shape=(4, 4), ori_shape=(4, 4))
    head = M2FFusionHead(num_things_classes=2, num_stuff_classes=0, test_cfg=test_cfg)
    return head.predict(cls_logits, mask_logits, [meta])[0]


def test_fusion_head_object_mask_thr_decides_which_queries_become_segments():
    default = _fusion_results(filter_low_score=True)['pan_results'].sem_seg[0]
    assert set(default[:, :2].unique().tolist()) == {0 + fusion.INSTANCE_OFFSET}   # query 0: instance 1, class 0
    assert set(default[:, 2:].unique().tolist()) == {2}                             # query 1 (0.67 < 0.8): VOID
    lenient = _fusion_results(filter_low_score=True, object_mask_thr=0.5)['pan_results'].sem_seg[0]
    assert set(lenient[:, :2].unique().tolist()) == {0 + fusion.INSTANCE_OFFSET}
    assert set(lenient[:, 2:].unique().tolist()) == {0 + 2 * fusion.INSTANCE_OFFSET}  # instance 2, class 0
    assert set(_fusion_results(instance_on=True, panoptic_on=False)) == {'ins_results'}


def test_fusion_head_query_chunk_size_sets_the_chunks(monkeypatch):
    chunks = []
    original = fusion.resized_chunks

    def spy(mask_logits, query_idx, chunk, *args):
        for idx, logits in original(mask_logits, query_idx, chunk, *args):
            chunks.append(len(idx))
            yield idx, logits

    monkeypatch.setattr(fusion, 'resized_chunks', spy)
    default = _fusion_results(semantic_on=True)
    assert chunks == [2]
    chunks.clear()
    one = _fusion_results(semantic_on=True, query_chunk_size=1)
    assert chunks == [1, 1]
    assert torch.equal(one['pan_results'].sem_seg, default['pan_results'].sem_seg)  # memory, not results


def _seg_head(cls=M2FSegHead, **changes):
    torch.manual_seed(0)
    return cls(**dict(SEG_HEAD, **changes)).eval()


def _feats():
    return [torch.randn(1, c, 32 // s, 32 // s) for c, s in zip(IN_CHANNELS, [4, 8, 16, 32])]


def test_seg_head_refuses_a_typo_in_decode_head_or_model_test_cfg():
    with pytest.raises(M2FConfigError, match=r"decode_head.test_cfg: unknown key 'query_chunk'; did you mean "
                                             r"'query_chunk_size'\? \(M2FSegHead reads query_chunk_size\)"):
        _seg_head(test_cfg=dict(query_chunk=4))
    with pytest.raises(M2FConfigError, match=r'decode_head.test_cfg.object_mask_thr: M2FSegHead does not read it'):
        _seg_head(test_cfg=dict(object_mask_thr=0.5))
    head = _seg_head()
    metas = [dict(img_shape=(32, 32), pad_shape=(32, 32))]
    with torch.no_grad():
        with pytest.raises(M2FConfigError, match=r"model.test_cfg: unknown key 'mod'; did you mean 'mode'"):
            head.predict(_feats(), metas, ConfigDict(mod='whole'))
        with pytest.raises(M2FConfigError, match=r'model.test_cfg.semantic_on: M2FSegHead does not read it'):
            head.predict(_feats(), metas, ConfigDict(mode='whole', semantic_on=True))
        with pytest.raises(M2FConfigError, match=r"M2FMaskFormerSegHead reads query_chunk_size"):
            _seg_head(M2FMaskFormerSegHead, test_cfg=dict(chunk=2), pixel_decoder=None, transformer_decoder=dict(
                num_layers=1, layer_cfg=dict(embed_dims=D, num_heads=2, feedforward_channels=16)))
        per_pixel = M2FPerPixelHead(in_channels=IN_CHANNELS, num_classes=C, feat_channels=D, out_channels=D,
                                    pixel_decoder=dict(norm_cfg=dict(type='GN', num_groups=4))).eval()
        per_pixel.predict(_feats(), metas, ConfigDict(mode='slide', crop_size=(32, 32), stride=(16, 16)))
        with pytest.raises(M2FConfigError, match=r'model.test_cfg.query_chunk_size: M2FPerPixelHead does not read'):
            per_pixel.predict(_feats(), metas, ConfigDict(mode='whole', query_chunk_size=4))


def test_seg_head_chunk_size_comes_from_model_test_cfg_over_decode_head_test_cfg(monkeypatch):
    chunks = []

    def spy(*args, chunk, **kwargs):
        chunks.append(chunk)
        return fuse(*args, chunk=chunk, **kwargs)

    monkeypatch.setattr(seg_head, 'fuse', spy)
    head = _seg_head(test_cfg=dict(query_chunk_size=3))
    assert head.test_cfg == dataclasses.replace(DEFAULTS, query_chunk_size=3)
    metas = [dict(img_shape=(32, 32), pad_shape=(32, 32))]
    feats = _feats()
    with torch.no_grad():
        own = head.predict(feats, metas, ConfigDict(mode='whole'))             # what mmseg passes: its test_cfg
        override = head.predict(feats, metas, ConfigDict(mode='whole', query_chunk_size=1))
        default = _seg_head().predict(feats, metas, None)
    assert chunks == [3, 1, DEFAULTS.query_chunk_size]
    assert torch.allclose(own, override, atol=1e-6) and torch.allclose(own, default, atol=1e-6)


def _detector(**changes):
    from m2f_mm.models.detector import M2FDetector
    head = {key: value for key, value in SEG_HEAD.items() if key != 'num_classes'}
    head.update(type='M2FHead', in_channels=[8, 16, 32, 64], num_things_classes=2, num_stuff_classes=1)
    cfg = dict(backbone=dict(type='ResNet', depth=18, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                             init_cfg=None),
               panoptic_head=head, panoptic_fusion_head=dict(type='M2FFusionHead'), train_cfg=dict(),
               test_cfg=dict(panoptic_on=True), data_preprocessor=dict(type='DetDataPreprocessor'))
    cfg.update(changes)
    return M2FDetector(**cfg)


def test_detector_refuses_a_test_cfg_on_the_panoptic_head_and_typos_in_its_own():
    assert _detector().panoptic_fusion_head.test_cfg == DEFAULTS
    head = {key: value for key, value in SEG_HEAD.items() if key != 'num_classes'}
    with pytest.raises(M2FConfigError, match=r'panoptic_head.test_cfg: .* put them in model.test_cfg'):
        _detector(panoptic_head=dict(head, type='M2FHead', test_cfg=dict(iou_thr=0.5)))
    with pytest.raises(M2FConfigError, match=r"unknown key 'iou_th'; did you mean 'iou_thr'"):
        _detector(test_cfg=dict(iou_th=0.5))


def test_test_config_is_not_collected_as_a_test():
    assert TestConfig.__test__ is False
