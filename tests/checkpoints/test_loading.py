"""Weights loaded for use fit the model, or the tool stops naming keys, shapes and the fix."""
import os.path as osp

import pytest
import torch

from m2f_mm.checkpoints.loading import compare_state_dicts, fitting_state, fix_hints, load_into
from m2f_mm.errors import M2FCheckpointError


def _model_state():
    return {'backbone.w': torch.zeros(2, 3), 'panoptic_head.query_feat.weight': torch.zeros(24, 8),
            'panoptic_head.class_embed.weight': torch.zeros(8, 8)}


def test_compare_state_dicts_finds_each_kind_of_problem():
    ckpt = {'backbone.w': torch.ones(2, 3), 'panoptic_head.query_feat.weight': torch.ones(12, 8),
            'panoptic_head.extra.bias': torch.ones(1), 'backbone.fc.weight': torch.ones(1)}
    report = compare_state_dicts(_model_state(), ckpt)
    assert report.num_loaded == 1
    assert report.mismatched == [('panoptic_head.query_feat.weight', (12, 8), (24, 8))]
    assert report.missing == ['panoptic_head.class_embed.weight']
    assert report.unexpected == ['panoptic_head.extra.bias', 'backbone.fc.weight']
    assert report.unexpected_in_heads == ['panoptic_head.extra.bias'] and report.blocking
    # An extra backbone key alone (e.g. a classifier's fc) does not block.
    assert not compare_state_dicts({'backbone.w': torch.zeros(1)},
                                   {'backbone.w': torch.zeros(1), 'backbone.fc.weight': torch.zeros(1)}).blocking


def test_hints_name_the_option_or_the_converter():
    model = _model_state()
    ckpt = dict(model, **{'panoptic_head.query_feat.weight': torch.ones(12, 8),
                          'panoptic_head.class_embed.weight': torch.ones(5, 8)})
    hints = ' '.join(fix_hints(compare_state_dicts(model, ckpt), ckpt))
    assert 'model.panoptic_head.num_queries=12' in hints and '4 classes, the model 7' in hints
    mmdet = {'panoptic_head.cls_embed.weight': torch.ones(1)}
    assert 'mmdet_to_m2f.py' in ' '.join(fix_hints(compare_state_dicts(model, mmdet), mmdet))
    d2 = {'sem_seg_head.predictor.query_feat.weight': torch.ones(1)}
    assert 'd2_to_m2f.py' in ' '.join(fix_hints(compare_state_dicts(model, d2), d2))
    other = {'foo': torch.ones(1)}
    assert 'shares no key' in ' '.join(fix_hints(compare_state_dicts(model, other), other))


def test_fitting_state_strict_and_partial():
    net = torch.nn.Linear(3, 2)
    good = {'state_dict': {'module.weight': torch.ones(2, 3), 'module.bias': torch.ones(2)}}
    state, report = fitting_state(net, good, 'good.pth', partial=False)
    assert set(state) == {'weight', 'bias'} and not report.blocking  # 'module.' stripped as mmengine does
    bad = {'state_dict': {'weight': torch.ones(4, 3), 'bias': torch.ones(2)}}
    with pytest.raises(M2FCheckpointError, match=r'weight: \[4, 3\] vs \[2, 3\]'):
        fitting_state(net, bad, 'bad.pth', partial=False)
    state, report = fitting_state(net, bad, 'bad.pth', partial=True)
    assert set(state) == {'bias'} and report.mismatched[0][0] == 'weight'


def test_an_unexpected_key_of_any_head_blocks():
    for head in ('panoptic_head.', 'decode_head.', 'panoptic_fusion_head.'):
        assert compare_state_dicts({}, {head + 'extra': torch.ones(1)}).blocking, head
    assert not compare_state_dicts({}, {'neck.extra': torch.ones(1)}).blocking


def test_load_into_loads_strictly_or_partially_and_logs_what_stayed(tmp_path, caplog):
    import logging
    net = torch.nn.Linear(3, 2)
    path = str(tmp_path / 'fits.pth')
    torch.save({'state_dict': {'module.weight': torch.ones(2, 3), 'module.bias': torch.full((2, ), 2.0)}}, path)
    report = load_into(net, path)  # a path is read through load_checkpoint_file
    assert report.num_loaded == 2 and net.bias.tolist() == [2.0, 2.0] and net.weight.sum().item() == 6
    bad = {'state_dict': {'weight': torch.zeros(4, 3), 'bias': torch.zeros(2), 'extra': torch.zeros(1)}}
    with pytest.raises(M2FCheckpointError, match=r'checkpoint bad.pth does not fit'):
        load_into(net, bad, filename='bad.pth')
    assert net.bias.tolist() == [2.0, 2.0]  # nothing loaded
    logger = logging.getLogger('m2f_test_load_into')
    with caplog.at_level(logging.WARNING, logger=logger.name):
        report = load_into(net, bad, partial=True, filename='bad.pth', logger=logger)
    assert net.bias.tolist() == [0.0, 0.0] and net.weight.sum().item() == 6  # the mismatched weight stayed
    assert report.mismatched[0][0] == 'weight' and report.unexpected == ['extra']
    assert caplog.messages == ['partial load: 1 tensors loaded, 1 left at initialisation (weight); '
                               '1 checkpoint keys unused (e.g. extra)']
    with pytest.raises(M2FCheckpointError, match=r'missing.pth does not exist'):
        load_into(net, str(tmp_path / 'missing.pth'))


@pytest.fixture(scope='module')
def tiny_checkpoints(tmp_path_factory):
    """Checkpoints of the tiny model with 12 instead of 24 queries, and of an unrelated model."""
    from mmengine.registry import init_default_scope

    import m2f_mm  # noqa: F401
    from m2f_mm.registry import MODELS
    init_default_scope('mmdet')
    root = tmp_path_factory.mktemp('ckpts')
    from m2f_mm.config import load_resolved
    cfg = load_resolved(osp.join(osp.dirname(__file__), '..', '..', 'configs',
                                 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py'))
    cfg.model.panoptic_head.num_queries = 12
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta=dict()), root / 'q12.pth')
    torch.save(dict(state_dict={'encoder.fc.weight': torch.ones(3, 3)}), root / 'unrelated.pth')
    return str(root / 'q12.pth'), str(root / 'unrelated.pth')


@pytest.mark.slow
def test_test_tool_refuses_a_checkpoint_that_does_not_fit(tiny_data, tiny_checkpoints, tmp_path, tools):
    config = tools.write_config(str(tmp_path / 'cfg.py'), tiny_data)
    q12, unrelated = tiny_checkpoints
    out = tools.run(['tools/test.py', config, q12, '--work-dir', str(tmp_path / 'w')])
    assert out.returncode == 1, out.stderr[-2000:]
    assert 'panoptic_head.query_feat.weight: [12, 64] vs [24, 64]' in out.stderr
    assert 'model.panoptic_head.num_queries=12' in out.stderr and 'Traceback' not in out.stderr
    out = tools.run(['tools/test.py', config, unrelated, '--work-dir', str(tmp_path / 'w')])
    assert out.returncode == 1 and 'shares no key' in out.stderr and 'backbone.conv1.weight' in out.stderr


@pytest.mark.slow
def test_load_from_refuses_then_partial_load_lists_what_stayed(tiny_data, tiny_checkpoints, tmp_path, tools):
    q12, _ = tiny_checkpoints
    config = tools.write_config(str(tmp_path / 'cfg.py'), tiny_data, max_iters=1, extra=f'load_from = {q12!r}')
    out = tools.run(['tools/train.py', config, '--work-dir', str(tmp_path / 'strict')])
    assert out.returncode == 1 and 'query_embed.weight: [12, 64] vs [24, 64]' in out.stderr
    assert not osp.exists(tmp_path / 'strict' / 'iter_1.pth')  # nothing was trained on the wrong weights
    out = tools.run(['tools/train.py', config, '--work-dir', str(tmp_path / 'partial'), '--partial-load'])
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'left at initialisation' in log and 'panoptic_head.query_feat.weight' in log
