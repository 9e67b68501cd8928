"""benchmarks/_bench_models.py: both sides of every side by side build from their configs, and ours
loads the reference's weights strictly (a benchmark that compared differently initialised or
differently sized models would print meaningless ratios)."""
import os.path as osp
import sys

import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'benchmarks'))
import _bench_models  # noqa: E402


@pytest.mark.parametrize('model', ['mask2former', 'maskformer'])
@pytest.mark.parametrize('task', ['panoptic', 'semantic'])
def test_both_sides_build_and_share_weights(tmp_path, model, task):
    spec = dict(task=task, model=model, size=64, batch=1, queries=5, classes=6, stuff_classes=2 if task ==
                'panoptic' else 6, things=2, stuff=1, seed=0)
    weights = str(tmp_path / 'weights.pth')
    _bench_models.save_reference_weights(spec, weights)
    ref, ours = _bench_models.build_model(spec, 'ref'), _bench_models.build_model(spec, 'ours')
    _bench_models.load_weights(ref, spec, 'ref', weights)
    _bench_models.load_weights(ours, spec, 'ours', weights)  # strict
    head = ours.panoptic_head if task == 'panoptic' else ours.decode_head
    assert type(head).__module__.startswith('m2f_mm.')
    ref_head = ref.panoptic_head if task == 'panoptic' else ref.decode_head
    assert not type(ref_head).__module__.startswith('m2f_mm.')
    assert head.num_queries == ref_head.num_queries == 5
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    ours.train()
    data = ours.data_preprocessor(_bench_models.make_batch(spec), True)
    losses = ours.loss(data['inputs'], data['data_samples'])
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)


def test_checkpointing_is_refused_for_maskformer():
    spec = dict(task='panoptic', model='maskformer', size=64, batch=1, queries=5, classes=6, stuff_classes=2,
                things=2, stuff=1, seed=0, num_cp=2)
    with pytest.raises(SystemExit, match='num-cp'):
        _bench_models.model_config(spec, 'ours')
