"""run_demo.py --ablations / --baseline mmdet: each variant is a switch of the real model, the mmdet
baseline is mmdet's own Mask2Former with our model's sizes, the tables are computed right, and a quick
run (a few iterations on a handful of images) writes the tables and the curves."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config, ConfigDict

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAIN = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py')
sys.path.insert(0, osp.join(REPO, 'tools', 'demo'))
import _ablations as abl  # noqa: E402


def _build(config: str):
    from mmdet.registry import MODELS

    from m2f_mm.config import load_resolved
    return MODELS.build(load_resolved(config).model)  # class counts: the synthetic data's


def test_every_variant_is_one_switch_of_the_real_model(tmp_path):
    expected = {
        'masked': lambda h: h.transformer_decoder.use_masked_attention and h.query_feat is not None,
        'unmasked': lambda h: h.transformer_decoder.use_masked_attention is False,
        'zero_queries': lambda h: h.query_feat is None and not h.learnable_query_features,
        'single_level': lambda h: h.transformer_decoder.feature_levels == [0],
        'full_mask': lambda h: h.criterion.full_mask,
        'fpn_decoder': lambda h: type(h.pixel_decoder).__name__ == 'M2FFPNPixelDecoder',
    }
    assert set(expected) == set(abl.VARIANTS)
    reference = _build(MAIN).state_dict()
    for name, (_, _, overrides, _) in abl.VARIANTS.items():
        path = tmp_path / f'{name}.py'
        path.write_text(abl.leaf_config(MAIN, overrides, seed=3))
        cfg = Config.fromfile(str(path))
        assert cfg.randomness.seed == 3
        head = _build(str(path)).panoptic_head
        assert expected[name](head), name
        if name == 'masked':
            continue
        # nothing else moved: the same schedule, data and (for the decoder-only switches) the same weights
        assert cfg.train_cfg == Config.fromfile(MAIN).train_cfg and cfg.train_dataloader == Config.fromfile(
            MAIN).train_dataloader
        keys = set(head.state_dict())
        ours = {k[len('panoptic_head.'):] for k in reference if k.startswith('panoptic_head.')}
        if name in ('unmasked', 'single_level', 'full_mask'):
            assert keys == ours
        elif name == 'zero_queries':
            assert ours - keys == {'query_feat.weight'}
        else:
            assert {k for k in ours ^ keys if not k.startswith('pixel_decoder.')} == set()


def test_mmdet_baseline_is_mmdets_mask2former_with_our_sizes():
    """mmdet's own classes, and the same architecture: its weights convert into ours strictly and
    both give the same panoptic and semantic predictions."""
    from mmdet.models.dense_heads import Mask2FormerHead
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    from m2f_mm.checkpoints import convert_mmdet_to_m2f
    from _mmdet_baseline import mmdet_model

    from m2f_mm.config import load_resolved
    cfg = load_resolved(MAIN)
    torch.manual_seed(0)
    theirs = MODELS.build(ConfigDict(mmdet_model(cfg)))
    theirs.init_weights()
    with torch.no_grad():  # non-degenerate weights everywhere (mmdet's init zeroes MSDA offsets)
        for p in theirs.panoptic_head.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    assert type(theirs.panoptic_head) is Mask2FormerHead
    assert type(theirs.panoptic_head.assigner).__name__ == 'HungarianAssigner'
    assert theirs.panoptic_head.num_points == cfg.model.panoptic_head.criterion.num_points
    ours = MODELS.build(cfg.model)
    converted, unmapped = convert_mmdet_to_m2f(theirs.state_dict())
    assert unmapped == []
    ours.load_state_dict(converted, strict=True)
    images = [torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8)]
    meta = dict(img_shape=(96, 128), ori_shape=(96, 128), scale_factor=(1.0, 1.0))
    batch = theirs.data_preprocessor(dict(inputs=images, data_samples=[DetDataSample(metainfo=meta)]), False)
    theirs.eval(), ours.eval()
    with torch.no_grad():
        got = theirs.predict(batch['inputs'], batch['data_samples'])[0]
        want = ours.predict(batch['inputs'], [DetDataSample(metainfo=s.metainfo) for s in batch['data_samples']])[0]
    assert torch.equal(got.pred_sem_seg.sem_seg, want.pred_sem_seg.sem_seg)
    assert torch.equal(got.pred_panoptic_seg.sem_seg, want.pred_panoptic_seg.sem_seg)


def test_mmdet_baseline_refuses_an_ablated_config(tmp_path):
    from _mmdet_baseline import mmdet_model
    path = tmp_path / 'unmasked.py'
    path.write_text(abl.leaf_config(MAIN, abl.VARIANTS['unmasked'][2], seed=0))
    from m2f_mm.config import load_resolved
    with pytest.raises(ValueError, match='mirrors the paper model only'):
        mmdet_model(load_resolved(str(path)))


def test_tables_by_hand():
    def run(pq, ap, **extra):
        return {'coco_panoptic/PQ': pq, 'coco_panoptic/PQ_th': pq - 10, 'coco_panoptic/PQ_st': pq + 10,
                'coco/segm_mAP': ap, 'sem_seg/mIoU': 80.0, 'peak_rss_mb': 1000.0, 'sec_per_iter': 0.5,
                'train_minutes': 10.0, **extra}
    assert abl.summary([60.0, 62.0]) == '61.0 ± 1.4 (n=2)'
    assert abl.summary([61.24]) == '61.2' and abl.summary([]) == '-'
    groups = {'masked': [run(60.0, 0.30), run(62.0, 0.32)], 'unmasked': [run(58.0, 0.28), run(57.0, 0.27)],
              'full_mask': [run(61.5, 0.31, peak_rss_mb=3000.0)]}
    table = abl.ablation_table(groups).splitlines()
    masked, unmasked, full = table[2].split(' | '), table[3].split(' | '), table[4].split(' | ')
    assert masked[2] == '61.0 ± 1.4 (n=2)' and masked[5] == '31.0 ± 1.4 (n=2)'  # AP in percent
    assert unmasked[7] == '-3.5' and unmasked[8] == '-4.8'  # ΔPQ vs the mean of the masked runs; paper
    assert full[7] == '+0.5' and full[9] == '3000'
    seeds = abl.seed_table(groups, [0, 1], abl.MAIN_PAIR).splitlines()
    assert seeds[2] == '| 0 | 60.0 | 58.0 | +2.0 |' and seeds[3] == '| 1 | 62.0 | 57.0 | +5.0 |'
    assert seeds[4].endswith('| 3.5 ± 2.1 (n=2) |')
    # runs tagged with their seed are paired by it, so a run missing in the middle leaves its own row empty
    tagged = {'masked': [run(60.0, 0.3, seed=0), run(64.0, 0.3, seed=2)], 'unmasked': [run(58.0, 0.3, seed=2)]}
    rows = abl.seed_table(tagged, [0, 1, 2], abl.MAIN_PAIR).splitlines()
    assert rows[2:5] == ['| 0 | 60.0 | - | - |', '| 1 | - | - | - |', '| 2 | 64.0 | 58.0 | +6.0 |']
    base = abl.baseline_table(groups['masked'], [run(60.0, 0.30, sec_per_iter=1.0, peak_rss_mb=2000.0)])
    assert '| PQ | 61.0 ± 1.4 (n=2) | 60.0 | +1.0 |' in base
    assert '| training time per iteration | 0.50 s | 1.00 s | x0.50 |' in base
    assert '| peak memory (training process RSS) | 1000.00 MB | 2000.00 MB | x0.50 |' in base


def test_quick_ablations_and_baseline_write_the_tables(tmp_path):
    """The whole --ablations / --baseline flow through the real tools, 4 iterations on 6 images."""
    out, data, work = tmp_path / 'out', tmp_path / 'data', tmp_path / 'work'
    common = ['--quick', '--data', str(data), '--out', str(out), '--work-root', str(work)]
    for extra in (['--ablations', '--seeds', '0', '1'], ['--baseline', 'mmdet', '--seeds', '0', '--reuse']):
        result = subprocess.run([sys.executable, 'tools/demo/run_demo.py'] + common + extra, cwd=REPO,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    table = (out / 'ablations.md').read_text()
    for label, switch, _, _ in abl.VARIANTS.values():
        assert f'| {label} |' in table and (switch == '-' or switch in table)
    assert table.count('(n=2)') >= 2 * 5  # both runs of the main pair in every metric column
    assert '| 1 |' in table  # the per-seed table
    assert (out / 'ablations.png').stat().st_size > 0 and (out / 'baseline.png').stat().st_size > 0
    results = {name: json.loads((out / f'{name}.json').read_text()) for name in ('ablations', 'baseline')}
    runs = [r for group in results['ablations'].values() for r in group]
    assert len(runs) == 2 + 2 + 4
    for r in runs:
        assert 0 <= r['coco_panoptic/PQ'] <= 100 and 0 <= r['sem_seg/mIoU'] <= 100 and 0 <= r['coco/segm_mAP'] <= 1
        assert r['peak_rss_mb'] > 100 and r['sec_per_iter'] > 0
    # the switch reached the trained model: mmengine's dump of the resolved config of each run
    dumped = Config.fromfile(str(work / 'single_level' / 'single_level.py'))
    assert dumped.model.panoptic_head.transformer_decoder.feature_levels == [0]
    mmdet_run = Config.fromfile(str(work / 'mmdet' / 'mmdet.py'))
    assert mmdet_run.model.panoptic_head.type == 'Mask2FormerHead'
    assert results['baseline']['masked'][0] == results['ablations']['masked'][0]  # reused, not retrained
    # --finished-only trains nothing: seed 2 was never run, so its row is empty and the table is otherwise the same
    result = subprocess.run([sys.executable, 'tools/demo/run_demo.py'] + common
                            + ['--ablations', '--finished-only', '--seeds', '0', '1', '2'],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert 'not run: ' in result.stdout and 'masked-seed2' in result.stdout and not (work / 'masked-seed2').exists()
    assembled = (out / 'ablations.md').read_text()
    assert '| 2 | - | - | - |' in assembled and assembled.split('| seed |')[0] == table.split('| seed |')[0]
    baseline = (out / 'baseline.md').read_text()
    assert '| m2f_mm | mmdet 3.3.0 Mask2Former |' in baseline and '| training time per iteration |' in baseline


def test_quick_runs_have_their_own_folders_and_data_is_reused_only_with_its_settings(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'tools', 'demo'))
    import run_demo
    real, quick = run_demo.default_folders(False), run_demo.default_folders(True)
    assert real == dict(data='data/synthetic', out='outputs/demo', work_root='work_dirs/demo')
    assert set(real.values()).isdisjoint(quick.values())
    meta = tmp_path / 'meta.json'
    full, small = run_demo.data_settings(False), run_demo.data_settings(True)
    assert full == dict(num_train=1000, num_val=100, size=[192, 192], seed=0)
    assert run_demo.regenerate_reason(str(meta), full) == 'no synthetic set there yet'
    meta.write_text(json.dumps(dict(args=small)))  # what a --quick run leaves behind
    assert 'written with other settings' in run_demo.regenerate_reason(str(meta), full)
    assert run_demo.regenerate_reason(str(meta), small) is None
    meta.write_text('{not json')
    assert run_demo.regenerate_reason(str(meta), small) == 'its meta.json is unreadable'
