"""mmdet -> m2f_mm checkpoint conversion: every tensor mapped, strict loading, CLI."""
import os.path as osp

import mmdet
import pytest
import torch
from mmengine.config import Config

from m2f_mm.config import load_resolved
from mmengine.registry import DefaultScope

from m2f_mm.checkpoints import convert_mmdet_to_m2f, detect_layout, state_dict_prefixes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMDET_CFG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former',
                     'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py')
# the COCO panoptic leaf config, resolved as a run resolves it: 80 thing + 53 stuff classes, as mmdet's
OUR_CFG = osp.join(REPO, 'configs', 'm2f_r50_8xb2-lsj-50e_coco-panoptic.py')
D = 64


def _shrink(head, mmdet_style: bool) -> None:
    """Small widths / depths; enforce_decoder_input_project=True covers the input projections."""
    head.update(in_channels=[64, 128, 256, 512], feat_channels=D, out_channels=D, num_queries=10,
                enforce_decoder_input_project=True, positional_encoding=dict(num_feats=D // 2, normalize=True))
    head.pixel_decoder.positional_encoding = dict(num_feats=D // 2, normalize=True)
    head.pixel_decoder.encoder.num_layers = 2
    head.transformer_decoder.num_layers = 3
    if mmdet_style:
        enc = head.pixel_decoder.encoder.layer_cfg
        enc.self_attn_cfg.embed_dims = enc.ffn_cfg.embed_dims = D
        dec = head.transformer_decoder.layer_cfg
        dec.self_attn_cfg.embed_dims = dec.cross_attn_cfg.embed_dims = dec.ffn_cfg.embed_dims = D
    else:
        head.pixel_decoder.encoder.layer_cfg.embed_dims = D
        head.transformer_decoder.layer_cfg.embed_dims = D


def _backbone(model) -> None:
    model.backbone.update(depth=18, init_cfg=None)


@pytest.fixture(scope='module')
def mmdet_and_ours():
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS

    import m2f_mm.models.detector  # noqa: F401
    import m2f_mm.models.head  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref_cfg = Config.fromfile(MMDET_CFG)
        _backbone(ref_cfg.model)
        _shrink(ref_cfg.model.panoptic_head, mmdet_style=True)
        ref = MODELS.build(ref_cfg.model)
        our_cfg = load_resolved(OUR_CFG)
        _backbone(our_cfg.model)
        _shrink(our_cfg.model.panoptic_head, mmdet_style=False)
        ours = MODELS.build(our_cfg.model)
    return ref, ours


def test_real_mmdet_state_dict_converts_fully_and_loads_strictly(mmdet_and_ours):
    ref, ours = mmdet_and_ours
    src = ref.state_dict()
    assert any('decoder_input_projs' in k for k in src)  # the optional projections are covered
    converted, unmapped = convert_mmdet_to_m2f(src)
    assert unmapped == []
    assert len(converted) == len(src)
    ours.load_state_dict(converted, strict=True)
    # tensors are moved, not altered; backbone keys pass through unchanged
    assert torch.equal(ours.state_dict()['panoptic_head.class_embed.weight'], src['panoptic_head.cls_embed.weight'])
    assert torch.equal(ours.state_dict()['panoptic_head.mask_embed.layers.2.bias'],
                       src['panoptic_head.mask_embed.4.bias'])
    assert torch.equal(converted['backbone.conv1.weight'], src['backbone.conv1.weight'])
    assert detect_layout(src) == 'mmdet' and detect_layout(converted) == 'm2f_mm'
    assert detect_layout({'backbone.conv1.weight': torch.zeros(1)}) == 'unknown'


def test_unknown_head_keys_are_reported_and_checkpoint_dicts_accepted():
    weight = torch.zeros(1)
    ckpt = {'state_dict': {'backbone.x.weight': weight, 'neck.y.bias': weight,
                           'panoptic_head.cls_embed.weight': weight,
                           'panoptic_head.something_new.weight': weight}, 'meta': {}}
    converted, unmapped = convert_mmdet_to_m2f(ckpt)
    assert unmapped == ['panoptic_head.something_new.weight']
    assert list(converted) == ['backbone.x.weight', 'neck.y.bias', 'panoptic_head.class_embed.weight']


def test_layout_prefixes_are_the_documented_ones(mmdet_and_ours):
    _, ours = mmdet_and_ours
    prefixes = set(state_dict_prefixes(ours.panoptic_head.state_dict(), depth=2))
    assert prefixes == {
        'pixel_decoder.input_projs', 'pixel_decoder.level_embed', 'pixel_decoder.encoder',
        'pixel_decoder.lateral_convs', 'pixel_decoder.output_convs', 'pixel_decoder.mask_features',
        'transformer_decoder.layers', 'transformer_decoder.decoder_norm', 'input_projs.*',
        'query_feat.weight', 'query_embed.weight', 'level_embed.weight', 'class_embed.weight',
        'class_embed.bias', 'mask_embed.layers'}


def test_cli_converts_a_saved_checkpoint(tmp_path, mmdet_and_ours):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mmdet_to_m2f', osp.join(REPO, 'tools', 'model_converters', 'mmdet_to_m2f.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    ref, ours = mmdet_and_ours
    src, dst = tmp_path / 'mmdet.pth', tmp_path / 'm2f.pth'
    torch.save({'state_dict': ref.state_dict(), 'meta': {'epoch': 1}}, src)
    assert cli.main([str(src), str(dst)]) == 0
    out = torch.load(dst, map_location='cpu', weights_only=True)
    assert out['meta']['converted_from'] == 'mmdet Mask2Former' and out['meta']['epoch'] == 1
    ours.load_state_dict(out['state_dict'], strict=True)

    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'panoptic_head.unknown.weight': torch.zeros(1)}}, bad)
    assert cli.main([str(bad), str(tmp_path / 'x.pth')]) == 1
    assert not (tmp_path / 'x.pth').exists()
    assert cli.main([str(bad), str(tmp_path / 'x.pth'), '--allow-unmapped']) == 0
    assert cli.main([str(dst), str(tmp_path / 'again.pth')]) == 1  # already converted

    # A genuine mmengine checkpoint (HistoryBuffer objects in message_hub) loads through the safe loader.
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('m2f_converter_test')
    hub.update_scalar('train/loss', 1.5)
    torch.save({'state_dict': ref.state_dict(), 'meta': {'iter': 3}, 'message_hub': hub.state_dict()}, src)
    assert cli.main([str(src), str(tmp_path / 'from_runner.pth')]) == 0


def test_mmseg_layout_converts_under_decode_head(mmdet_and_ours):
    """mmseg 1.x's Mask2FormerHead has mmdet's layout under ``decode_head.``: the same table applies."""
    ref, ours = mmdet_and_ours
    source = {k.replace('panoptic_head.', 'decode_head.', 1): v for k, v in ref.state_dict().items()}
    converted, unmapped = convert_mmdet_to_m2f(source)
    assert unmapped == [] and detect_layout(source) == 'mmdet' and detect_layout(converted) == 'm2f_mm'
    assert set(converted) == {k.replace('panoptic_head.', 'decode_head.', 1) for k in ours.state_dict()}
