"""run_demo.py --ablations / --baseline mmdet: each variant is a checked-in config that sets one switch
of the real model, the mmdet baseline is mmdet's own Mask2Former with our model's sizes, the tables
are computed right, and a quick run (a few iterations on a handful of images) writes the tables and
the curves."""
import argparse
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config, ConfigDict

from m2f_mm.visualization import run_report as report

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAIN = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py')
BASELINE_DIR = osp.join(REPO, 'benchmarks', 'mmdet_baseline')


def _load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_demo = _load(osp.join(REPO, 'tools', 'demo', 'run_demo.py'), 'm2f_tool_run_demo')
VARIANTS = run_demo.VARIANTS


def _baseline():
    """benchmarks/mmdet_baseline/m2f_mmdet_baseline.py, importable by name as its config's custom_imports
    needs (run_demo.py puts the folder on the training process's PYTHONPATH)."""
    if BASELINE_DIR not in sys.path:
        sys.path.insert(0, BASELINE_DIR)
    import m2f_mmdet_baseline
    return m2f_mmdet_baseline


def _build(config: str):
    from mmdet.registry import MODELS

    from m2f_mm.config import load_resolved
    return MODELS.build(load_resolved(config).model)  # class counts: the synthetic data's


@pytest.mark.slow
def test_every_variant_is_one_switch_of_the_real_model(tmp_path):
    expected = {
        'masked': lambda h: h.transformer_decoder.use_masked_attention and h.query_feat is not None,
        'unmasked': lambda h: h.transformer_decoder.use_masked_attention is False,
        'zero_queries': lambda h: h.query_feat is None and not h.learnable_query_features,
        'single_level': lambda h: h.transformer_decoder.feature_levels == [0],
        'full_mask': lambda h: h.criterion.full_mask,
        'fpn_decoder': lambda h: type(h.pixel_decoder).__name__ == 'M2FFPNPixelDecoder',
        'semantic_fpn': lambda h: type(h.pixel_decoder).__name__ == 'M2FSemanticFPNPixelDecoder',
        'self_first': lambda h: {layer.attention_order for layer in h.transformer_decoder.layers} == {'self_first'},
        'dropout': lambda h: {layer.dropout for layer in h.transformer_decoder.layers} == {0.1},
        'three_off': lambda h: h.query_feat is None and {(layer.attention_order, layer.dropout)
                                                         for layer in h.transformer_decoder.layers} == {('self_first', 0.1)},
        'match_masks': lambda h: (h.criterion.match_on, h.criterion.loss_on) == ('masks', 'points'),
        'loss_masks': lambda h: (h.criterion.match_on, h.criterion.loss_on) == ('points', 'masks'),
        'queries_12': lambda h: h.num_queries == 12,
        'queries_48': lambda h: h.num_queries == 48,
        'maskformer': lambda h: type(h).__name__ == 'M2FMaskFormerHead' and h.criterion.full_mask,
        'maskformer_no_dropout_panoptic': lambda h: type(h).__name__ == 'M2FMaskFormerHead' and {
            layer.dropout for layer in h.transformer_decoder.layers} == {0.0},
    }
    assert set(expected) == set(VARIANTS)
    reference = _build(MAIN).state_dict()
    for name in VARIANTS:
        path = osp.join(REPO, run_demo.variant_config(name))
        cfg = Config.fromfile(path)
        cfg.merge_from_dict({'randomness.seed': 3})  # what run_demo.py's --cfg-options randomness.seed=3 does
        assert cfg.randomness.seed == 3
        head = _build(path).panoptic_head
        assert expected[name](head), name
        if name == 'masked':
            continue
        # nothing else moved: the same schedule, data and (for the decoder-only switches) the same weights
        assert cfg.train_cfg == Config.fromfile(MAIN).train_cfg and cfg.train_dataloader == Config.fromfile(
            MAIN).train_dataloader
        keys = set(head.state_dict())
        ours = {k[len('panoptic_head.'):] for k in reference if k.startswith('panoptic_head.')}
        if name in ('unmasked', 'single_level', 'full_mask', 'self_first', 'dropout', 'match_masks', 'loss_masks'):
            assert keys == ours
        elif name in ('zero_queries', 'three_off'):
            assert ours - keys == {'query_feat.weight'}
        elif name.startswith('queries_'):
            assert keys == ours  # the same parameters, other shapes: [Q, D] query tables
        elif name.startswith('maskformer'):
            continue  # another head altogether; its config differs from the main job's only there (below)
        else:
            assert {k for k in ours ^ keys if not k.startswith('pixel_decoder.')} == set()


def _flat(value, prefix=''):
    """A config dict as {dotted key: leaf value}."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f'{prefix}{key}.').items()}
    return {prefix.rstrip('.'): value}


def _model_and_run_settings(cfg: dict) -> dict:
    """A resolved config, flat, without the helper variables some configs define for their own use
    (heads and parts that ``model`` places: _base_/models/maskformer_{head,tiny,baselines_heads}.py)."""
    helpers = ('maskformer_head', 'maskformer_tiny_head', 'maskformer_pixel_decoder', 'maskformer_transformer',
               'per_pixel_head', 'per_pixel_plus_head')
    return {k: v for k, v in _flat(cfg).items() if k.split('.')[0] not in helpers}


def _changed(a: dict, b: dict) -> set:
    return {k for k in set(a) | set(b) if a.get(k, '<absent>') != b.get(k, '<absent>')}


def test_semantic_runs_differ_from_maskformer_only_in_the_head_or_matcher():
    """MaskFormer's semantic comparisons on the synthetic set: Mask2Former, PerPixelBaseline(+) swap the
    decode head only; fixed matching swaps the matcher only; the no-dropout run changes the decoder's dropout
    only. Same data, schedule, backbone, seed."""
    from m2f_mm.config import load_resolved
    from m2f_mm.datasets.synthetic_dataset import SYNTHETIC_METAINFO

    def resolved(path):  # label PNGs carry no names: the synthetic classes, as a checkpoint of that data gives them
        return _model_and_run_settings(load_resolved(path, dataset_meta=SYNTHETIC_METAINFO).to_dict())
    reference = resolved(osp.join(REPO, run_demo.CONFIGS['maskformer_semantic']))
    assert reference['model.decode_head.type'] == 'M2FMaskFormerSegHead'
    heads = {'m2f_semantic': 'M2FSegHead', 'perpixel': 'M2FPerPixelHead', 'perpixel_plus': 'M2FPerPixelPlusHead',
             'fixed_matching': 'M2FMaskFormerSegHead', 'maskformer_no_dropout': 'M2FMaskFormerSegHead'}
    only = {'fixed_matching': 'model.decode_head.criterion.assigner',
            'maskformer_no_dropout': 'model.decode_head.transformer_decoder.layer_cfg.dropout'}
    assert set(heads) == set(run_demo.SEMANTIC_VARIANTS) - {'maskformer_semantic'}
    for name, head in heads.items():
        variant = resolved(osp.join(REPO, run_demo.variant_config(name)))
        changed = _changed(reference, variant)
        assert variant['model.decode_head.type'] == head
        within = only.get(name, 'model.decode_head')
        assert changed and all(k == within or k.startswith(within + '.') for k in changed), (name, sorted(changed))
        # the per-pixel baselines keep MaskFormer's pixel decoder (and PerPixelBaseline+ its transformer)
        if name.startswith('perpixel'):
            assert not {k for k in changed if k.startswith('model.decode_head.pixel_decoder.')}
        if name == 'perpixel_plus':
            assert not {k for k in changed if k.startswith('model.decode_head.transformer_decoder.')}
        if name == 'maskformer_no_dropout':
            assert (reference[within], variant[within]) == (0.1, 0.0)


def test_panoptic_maskformer_diagnosis_changes_only_the_decoder_dropout():
    """The panoptic no-dropout run is the MaskFormer run with its DETR decoder's dropout 0.1 -> 0.0, nothing else."""
    from m2f_mm.config import load_resolved
    reference = _model_and_run_settings(load_resolved(osp.join(REPO, run_demo.CONFIGS['maskformer'])).to_dict())
    variant = _model_and_run_settings(load_resolved(
        osp.join(REPO, run_demo.variant_config('maskformer_no_dropout_panoptic'))).to_dict())
    key = 'model.panoptic_head.transformer_decoder.layer_cfg.dropout'
    assert _changed(reference, variant) == {key}
    assert (reference[key], variant[key]) == (0.1, 0.0)


def test_instance_only_run_is_the_main_model_trained_on_the_things():
    """One model, three tasks: the instance-only config trains the main job's model, schedule and optimizer on
    the COCO instances file (things only), evaluated with mask AP."""
    from m2f_mm.config import load_resolved
    main = load_resolved(MAIN)
    alone = load_resolved(osp.join(REPO, run_demo.variant_config('instance_only')))
    assert alone.train_dataloader.dataset.ann_file.endswith('instances_train.json')
    assert [e['type'] for e in (alone.val_evaluator if isinstance(alone.val_evaluator, list)
                                else [alone.val_evaluator])] == ['CocoMetric']
    assert alone.model.panoptic_head.num_stuff_classes == 0
    assert alone.model.panoptic_head.num_things_classes == main.model.panoptic_head.num_things_classes
    changed = _changed(_flat(main.model.to_dict()), _flat(alone.model.to_dict()))
    assert changed == {'panoptic_head.num_stuff_classes', 'panoptic_fusion_head.num_stuff_classes',
                       'data_preprocessor.pad_seg', 'test_cfg.panoptic_on', 'test_cfg.semantic_on'}
    for key in ('train_cfg', 'optim_wrapper', 'param_scheduler', 'randomness'):
        assert alone[key] == main[key], key


def test_each_ablation_config_differs_from_the_main_job_only_in_its_switch():
    """The resolved configs (classes, schedule, evaluator files filled) of a variant and of the main job,
    key by key: only the keys under the variant's switch differ."""
    from m2f_mm.config import load_resolved
    main = _model_and_run_settings(load_resolved(MAIN).to_dict())
    switches = {'unmasked': 'model.panoptic_head.transformer_decoder.use_masked_attention',
                'zero_queries': 'model.panoptic_head.learnable_query_features',
                'single_level': 'model.panoptic_head.transformer_decoder.feature_levels',
                'full_mask': 'model.panoptic_head.criterion.full_mask',
                'fpn_decoder': 'model.panoptic_head.pixel_decoder',
                'semantic_fpn': 'model.panoptic_head.pixel_decoder',
                'self_first': 'model.panoptic_head.transformer_decoder.layer_cfg.attention_order',
                'dropout': 'model.panoptic_head.transformer_decoder.layer_cfg.dropout',
                'three_off': ('model.panoptic_head.learnable_query_features',
                              'model.panoptic_head.transformer_decoder.layer_cfg.attention_order',
                              'model.panoptic_head.transformer_decoder.layer_cfg.dropout'),
                'match_masks': ('model.panoptic_head.criterion.match_on', 'model.panoptic_head.criterion.loss_on'),
                'loss_masks': ('model.panoptic_head.criterion.match_on', 'model.panoptic_head.criterion.loss_on'),
                'queries_12': 'model.panoptic_head.num_queries',
                'queries_48': 'model.panoptic_head.num_queries',
                'maskformer': 'model.panoptic_head', 'maskformer_no_dropout_panoptic': 'model.panoptic_head'}
    assert run_demo.variant_config('masked') == run_demo.CONFIG
    assert set(switches) == set(VARIANTS) - {'masked'}
    for name, switch in switches.items():
        path = osp.join(REPO, run_demo.variant_config(name))
        if name not in run_demo.CONFIGS:
            assert osp.basename(path) == f'm2f_r18-q24_1xb8-2k_synthetic-panoptic_{name.replace("_", "-")}.py'
        variant = _model_and_run_settings(load_resolved(path).to_dict())
        changed = {k for k in set(main) | set(variant) if main.get(k, '<absent>') != variant.get(k, '<absent>')}
        keys = (switch,) if isinstance(switch, str) else switch
        assert changed and all(any(k == s or k.startswith(s + '.') for s in keys) for k in changed), (name, sorted(changed))
        if name not in run_demo.CONFIGS and (len(keys) == 1 or name.endswith('_masks')):  # the table names the same switch
            table_key = VARIANTS[name][1].split('=')[0]
            assert any(s.endswith(table_key) or s.endswith(table_key.rsplit('.', 1)[0]) for s in keys), (name, table_key)


def test_mmdet_baseline_is_mmdets_mask2former_with_our_sizes():
    """mmdet's own classes, and the same architecture: its weights convert into ours strictly and
    both give the same panoptic and semantic predictions."""
    from mmdet.models.dense_heads import Mask2FormerHead
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    from m2f_mm.checkpoints import convert_mmdet_to_m2f
    from m2f_mm.config import load_resolved
    baseline = _baseline()
    cfg = load_resolved(MAIN)
    # the checked-in config builds exactly this model (class counts filled from the same data)
    checked_in = load_resolved(osp.join(BASELINE_DIR, 'mmdet-mask2former_r18-q24_1xb8-2k_synthetic-panoptic.py'))
    assert 'm2f_mmdet_baseline' in checked_in.custom_imports.imports
    assert checked_in.model.type == baseline.BUILDER_TYPE
    assert checked_in.model.module.to_dict() == cfg.model.to_dict()
    built = MODELS.build(checked_in.model)
    assert type(built) is baseline.M2FDemoMMDetMask2Former and type(built.panoptic_head) is Mask2FormerHead
    torch.manual_seed(0)
    theirs = MODELS.build(ConfigDict(baseline.mmdet_model(cfg.model)))
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


def test_mmdet_baseline_refuses_an_ablated_config():
    from m2f_mm.config import load_resolved
    ablated = load_resolved(osp.join(REPO, run_demo.variant_config('unmasked')))
    with pytest.raises(ValueError, match='mirrors the paper model only'):
        _baseline().mmdet_model(ablated.model)


def test_tables_by_hand():
    def run(pq, ap, **extra):
        return {'coco_panoptic/PQ': pq, 'coco_panoptic/PQ_th': pq - 10, 'coco_panoptic/PQ_st': pq + 10,
                'coco/segm_mAP': ap, 'sem_seg/mIoU': 80.0, 'peak_rss_mb': 1000.0, 'sec_per_iter': 0.5,
                'train_minutes': 10.0, **extra}
    assert report.summary([60.0, 62.0]) == '61.0 ± 1.4 (n=2)'
    assert report.summary([61.24]) == '61.2' and report.summary([]) == '-'
    groups = {'masked': [run(60.0, 0.30), run(62.0, 0.32)], 'unmasked': [run(58.0, 0.28), run(57.0, 0.27)],
              'full_mask': [run(61.5, 0.31, peak_rss_mb=3000.0)]}
    table = report.ablation_table(groups, VARIANTS, 'masked').splitlines()
    masked, unmasked, full = table[2].split(' | '), table[3].split(' | '), table[4].split(' | ')
    assert masked[2] == '61.0 ± 1.4 (n=2)' and masked[5] == '31.0 ± 1.4 (n=2)'  # AP in percent
    assert unmasked[7] == '-3.5' and unmasked[8] == '-4.8'  # ΔPQ vs the mean of the masked runs; paper
    assert full[7] == '+0.5' and full[10] == '3000'
    assert masked[9] == 'reference' and unmasked[9] == 'not run'  # untagged runs cannot be paired

    seeds = report.seed_table(groups, [0, 1], run_demo.MAIN_PAIR).splitlines()
    assert seeds[2] == '| 0 | 60.0 | 58.0 | +2.0 |' and seeds[3] == '| 1 | 62.0 | 57.0 | +5.0 |'
    assert seeds[4].endswith('| 3.5 ± 2.1 (n=2) |')
    # runs tagged with their seed are paired by it, so a run missing in the middle leaves its own row empty
    tagged = {'masked': [run(60.0, 0.3, seed=0), run(64.0, 0.3, seed=2)], 'unmasked': [run(58.0, 0.3, seed=2)]}
    rows = report.seed_table(tagged, [0, 1, 2], run_demo.MAIN_PAIR).splitlines()
    assert rows[2:5] == ['| 0 | 60.0 | - | - |', '| 1 | - | - | - |', '| 2 | 64.0 | 58.0 | +6.0 |']
    base = report.baseline_table(groups['masked'], [run(60.0, 0.30, sec_per_iter=1.0, peak_rss_mb=2000.0)])
    assert '| PQ | 61.0 ± 1.4 (n=2) | 60.0 | +1.0 |' in base
    assert '| training time per iteration | 0.50 s | 1.00 s | x0.50 |' in base
    assert '| peak memory (training process RSS) | 1000.00 MB | 2000.00 MB | x0.50 |' in base


def test_paired_differences_and_verdicts_by_hand():
    def runs(*pqs):
        return [{'coco_panoptic/PQ': pq, 'seed': seed} for seed, pq in enumerate(pqs) if pq is not None]
    reference = runs(60.0, 62.0, 61.0)
    diff = report.paired_difference(reference, runs(58.0, 57.0, 58.0))  # -2, -5, -3
    assert diff.n == 3 and diff.mean == pytest.approx(-10 / 3) and diff.std == pytest.approx(1.5275, abs=1e-4)
    assert report.verdict(diff, -4.8) == 'reproduces (same direction)'
    assert report.verdict(diff, +0.5) == 'opposite of the paper'
    assert report.verdict(diff, '-1.6 at 3x memory') == 'reproduces (same direction)'
    assert report.verdict(diff, 'MaskFormer: fewer than 100 lower') == 'resolved (the paper gives no direction)'
    small = report.paired_difference(reference, runs(61.0, 61.0, 60.0))  # +1, -1, -1: within twice its spread
    assert report.verdict(small, -0.3) == 'not resolved at this scale'
    # paired by seed, not by position: seed 1 missing on one side leaves two pairs
    partial = report.paired_difference(reference, runs(59.0, None, 60.0))
    assert (partial.n, partial.mean) == (2, -1.0)
    assert report.verdict(report.paired_difference(reference, runs(59.0)), -1.0) == 'one seed: no spread'
    assert report.paired_difference(reference, []) is None and report.verdict(None, -1.0) == 'not run'
    groups = {'masked': reference, 'unmasked': runs(58.0, 57.0, 58.0)}
    row = report.ablation_table(groups, VARIANTS, 'masked').splitlines()[3].split(' | ')
    assert row[7] == '-3.3 ± 1.5 (n=3)' and row[9] == 'reproduces (same direction)'


@pytest.mark.slow
def test_quick_ablations_and_baseline_write_the_tables(tmp_path):
    """The whole --ablations / --baseline flow through the real tools, 4 iterations on 6 images: the main
    pair and one more switch, two seeds each (every run's config is trained above in one process)."""
    out, data, work = tmp_path / 'out', tmp_path / 'data', tmp_path / 'work'
    common = ['--quick', '--data', str(data), '--out', str(out), '--work-root', str(work)]
    variants = ['--variants', 'masked', 'unmasked', 'full_mask']
    record = tmp_path / 'record'
    for extra in (['--ablations', '--seeds', '0', '1', '--record', str(record)] + variants,
                  ['--baseline', 'mmdet', '--seeds', '0', '--reuse']):
        result = subprocess.run([sys.executable, 'tools/demo/run_demo.py'] + common + extra, cwd=REPO,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    table = (out / 'ablations.md').read_text()
    for name in variants[1:]:
        label, switch, _ = VARIANTS[name]
        assert f'| {label} |' in table and (switch == '-' or switch in table)
    assert table.count('(n=2)') >= 2 * 5  # both runs of the main pair in every metric column
    assert '| 1 |' in table  # the per-seed table
    assert (out / 'ablations.png').stat().st_size > 0 and (out / 'baseline.png').stat().st_size > 0
    results = {name: json.loads((out / f'{name}.json').read_text()) for name in ('ablations', 'baseline')}
    runs = [r for group in results['ablations'].values() for r in group]
    assert len(runs) == 2 + 2 + 2  # every variant with every seed
    for r in runs:
        assert 0 <= r['coco_panoptic/PQ'] <= 100 and 0 <= r['sem_seg/mIoU'] <= 100 and 0 <= r['coco/segm_mAP'] <= 1
        assert r['peak_rss_mb'] > 100 and r['sec_per_iter'] > 0
    # the switch reached the trained model: mmengine's dump of the resolved config of each run
    dumped = Config.fromfile(str(work / 'full_mask' / osp.basename(run_demo.variant_config('full_mask'))))
    assert dumped.model.panoptic_head.criterion.full_mask is True
    assert dumped.randomness.seed == 0 and Config.fromfile(
        str(work / 'masked-seed1' / osp.basename(run_demo.CONFIG))).randomness.seed == 1
    mmdet_run = Config.fromfile(str(work / 'mmdet' / 'mmdet-mask2former_r18-q24_1xb8-2k_synthetic-panoptic.py'),
                                import_custom_modules=False)  # its module is on the training run's PYTHONPATH only
    assert mmdet_run.model.type == 'M2FMMDetBaseline'
    assert results['baseline']['masked'][0] == results['ablations']['masked'][0]  # reused, not retrained
    # --finished-only trains nothing: seed 2 was never run, so its row is empty and the table is otherwise the same
    result = subprocess.run([sys.executable, 'tools/demo/run_demo.py'] + common
                            + ['--ablations', '--finished-only', '--seeds', '0', '1', '2'] + variants,
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert 'not run: ' in result.stdout and 'masked-seed2' in result.stdout and not (work / 'masked-seed2').exists()
    assembled = (out / 'ablations.md').read_text()
    assert '| 2 | - | - | - |' in assembled and assembled.split('| seed |')[0] == table.split('| seed |')[0]
    baseline = (out / 'baseline.md').read_text()
    assert '| m2f_mm | mmdet 3.3.0 Mask2Former |' in baseline and '| training time per iteration |' in baseline
    # --record kept metrics and logs only; the tables rebuild from them alone
    kept = sorted(osp.relpath(osp.join(d, f), record) for d, _, files in os.walk(record) for f in files)
    assert len([k for k in kept if k.endswith('metrics.json')]) == 6 and len(kept) == 12, kept
    assert all('checkpoint' not in json.loads((record / k).read_text()) for k in kept if k.endswith('metrics.json'))
    result = subprocess.run([sys.executable, 'tools/demo/run_demo.py', '--quick', '--out', str(tmp_path / 'again'),
                             '--work-root', str(record), '--ablations', '--finished-only', '--seeds', '0', '1']
                            + variants, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert (tmp_path / 'again' / 'ablations.md').read_text() == table


def test_task_and_semantic_tables_pair_by_seed():
    """One model, three tasks: the panoptic-trained runs minus the single-task runs, each in its own metric
    key, paired by seed; the semantic table compares mIoU against MaskFormer."""
    panoptic = [{'seed': s, 'coco/segm_mAP': ap, 'sem_seg/mIoU': miou}
                for s, ap, miou in ((0, 0.30, 80.0), (1, 0.31, 81.0), (2, 0.29, 79.0))]
    alone = {'instance (mask AP)': [{'seed': s, 'coco/segm_mAP': ap} for s, ap in ((0, 0.33), (1, 0.35), (2, 0.33))],
             'semantic (mIoU)': [{'seed': s, 'mIoU': m} for s, m in ((0, 80.5), (2, 78.0))]}
    rows = [report.TaskRow(label, key, single, paper, delta)
            for label, key, _, single, paper, delta in run_demo.TASK_ROWS]
    lines = report.task_table(panoptic, alone, rows).splitlines()
    instance, semantic = (line.split(' | ') for line in lines[2:4])
    # AP in percent: 30-33, 31-35, 29-33 -> -3, -4, -4
    assert instance[1] == '30.0 ± 1.0 (n=3)' and instance[3] == '-3.7 ± 0.6 (n=3)'
    assert instance[5] == '-2.0' and instance[6].startswith('reproduces')
    # seeds 0 and 2 only: -0.5, +1.0
    assert semantic[2] == '79.2 ± 1.8 (n=2)' and semantic[3] == '+0.2 ± 1.1 (n=2)'
    assert semantic[6].startswith('not resolved')
    groups = {'maskformer_semantic': [{'seed': 0, 'mIoU': 70.0}, {'seed': 1, 'mIoU': 72.0}],
              'perpixel': [{'seed': 0, 'mIoU': 60.0}, {'seed': 1, 'mIoU': 63.0}]}
    table = report.ablation_table(groups, run_demo.SEMANTIC_VARIANTS, 'maskformer_semantic',
                                  report.SEMANTIC_METRICS, 'mIoU').splitlines()
    assert 'ΔmIoU' in table[0]
    row = table[3].split(' | ')
    assert row[5] == '-9.5 ± 0.7 (n=2)' and row[6] == '-5.3 (39.2 vs 44.5)' and row[7] == 'reproduces (same direction)'


def test_semantic_table_against_maskformer_without_dropout_when_it_has_runs(tmp_path, monkeypatch):
    """write_ablations prints the semantic rows a second time against the no-dropout MaskFormer (paired by
    seed, hand-computed) once that run exists, and not before."""
    monkeypatch.setattr(run_demo, 'REPO', str(tmp_path))
    monkeypatch.setattr(run_demo, 'write_report', lambda stem, groups, table: tables.append(table))
    import m2f_mm.visualization.curves as curves  # the curves need logs; the tables only metrics
    monkeypatch.setattr(curves, 'plot_run_groups', lambda *args, **kwargs: None)
    monkeypatch.setattr(report, 'curve_groups', lambda *args, **kwargs: {})
    args = SimpleNamespace(out='out', seeds=[0, 1])
    groups = {'maskformer_semantic': [{'seed': 0, 'mIoU': 3.0}, {'seed': 1, 'mIoU': 5.0}],
              'fixed_matching': [{'seed': 0, 'mIoU': 88.0}, {'seed': 1, 'mIoU': 89.0}]}
    tables = []
    run_demo.write_ablations(args, groups, {})
    assert run_demo.SECOND_SEMANTIC_HEADING not in tables[0]
    groups['maskformer_no_dropout'] = [{'seed': 0, 'mIoU': 86.0}, {'seed': 1, 'mIoU': 86.0}]
    run_demo.write_ablations(args, groups, {})
    first, second = tables[1].split(run_demo.SECOND_SEMANTIC_HEADING)
    rows = {line.split(' | ')[0].lstrip('| '): line.split(' | ') for line in second.splitlines() if line.startswith('| ')}
    label = run_demo.SEMANTIC_VARIANTS
    assert rows[label['maskformer_no_dropout'][0]][7] == 'reference'
    assert rows[label['fixed_matching'][0]][5] == '+2.5 ± 0.7 (n=2)'  # 88-86, 89-86
    assert rows[label['maskformer_semantic'][0]][5] == '-82.0 ± 1.4 (n=2)'  # 3-86, 5-86
    first_rows = {line.split(' | ')[0].lstrip('| '): line.split(' | ') for line in first.splitlines()
                  if line.startswith('| ')}
    assert first_rows[label['fixed_matching'][0]][5] == '+84.5 ± 0.7 (n=2)'  # against the paper's MaskFormer


@pytest.mark.slow
def test_every_run_of_the_tables_trains_and_validates(tmp_path):
    """Every run the tables need (run_demo.ALL_RUNS: the panoptic ablations, MaskFormer, the semantic
    comparisons, instance-only), 2 iterations of its checked-in config with --quick's settings, in this
    process through the runner tools/train.py builds; its last validation logs the metric its table
    compares (a subprocess each, as run_demo.py does, would cost minutes of start-up)."""
    from mmengine.config import DictAction
    from mmengine.registry import RUNNERS

    from m2f_mm.datasets.synthetic import generate_dataset
    data = tmp_path / 'data'
    generate_dataset(str(data), num_train=6, num_val=3, size=(96, 96), seed=0)
    parser = argparse.ArgumentParser()  # --cfg-options as tools/train.py reads them
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(['--cfg-options', *run_demo.QUICK_OPTIONS, 'train_cfg.max_iters=2',
                                 f'data_root={data}/']).cfg_options
    compared = {**{n: 'coco_panoptic/PQ' for n in run_demo.VARIANTS},
                **{n: 'mIoU' for n in run_demo.SEMANTIC_VARIANTS}, 'instance_only': 'coco/segm_mAP'}
    assert set(compared) == set(run_demo.ALL_RUNS)
    for name, key in compared.items():
        cfg = Config.fromfile(osp.join(REPO, run_demo.variant_config(name)))
        cfg.merge_from_dict(dict(options, **{'randomness.seed': 1}))
        cfg.update(work_dir=str(tmp_path / name), experiment_name=f'quick-{name}', launcher='none')
        cfg.visualizer.name = f'quick-{name}'  # mmengine keeps one visualizer per name, writing to its first work dir
        cfg.setdefault('runner_type', 'M2FRunner')
        RUNNERS.build(cfg).train()
        log = report.training_log(str(tmp_path / name))
        assert key in log and 0 <= report.metric(log, key) <= 100, (name, log)
        assert log['sec_per_iter'] > 0


def test_quick_runs_have_their_own_folders_and_data_is_reused_only_with_its_settings(tmp_path):
    real, quick = run_demo.default_folders(False), run_demo.default_folders(True)
    assert real == dict(data='data/synthetic', out='outputs/demo', work_root='work_dirs/demo')
    assert set(real.values()).isdisjoint(quick.values())
    # runs of another length (--iters) never mix with the main job's, and share its data
    shorter = run_demo.default_folders(False, 1000)
    assert shorter == dict(data='data/synthetic', out='outputs/demo-1000it', work_root='work_dirs/demo-1000it')
    meta = tmp_path / 'meta.json'
    full, small = run_demo.data_settings(False), run_demo.data_settings(True)
    assert full == dict(num_train=1000, num_val=100, size=[192, 192], seed=0)
    assert run_demo.regenerate_reason(str(meta), full) == 'no synthetic set there yet'
    meta.write_text(json.dumps(dict(args=small)))  # what a --quick run leaves behind
    assert 'written with other settings' in run_demo.regenerate_reason(str(meta), full)
    assert run_demo.regenerate_reason(str(meta), small) is None
    meta.write_text('{not json')
    assert run_demo.regenerate_reason(str(meta), small) == 'its meta.json is unreadable'


@pytest.mark.slow
def test_readme_ablation_table_is_what_finished_only_prints(tmp_path):
    """The README's command, as written, in a folder holding the repository's tools/ and docs/ (the
    recorded runs): it trains nothing, and the README holds exactly the tables it prints."""
    readme = open(osp.join(REPO, 'README.md')).read()
    command = next(line.strip() for line in readme.splitlines()
                   if line.strip().startswith('python tools/demo/run_demo.py --ablations --iters 1000 --finished-only'))
    for name in ('tools', 'docs'):
        (tmp_path / name).symlink_to(osp.join(REPO, name))
    result = subprocess.run([sys.executable] + command.split()[1:], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    printed = (tmp_path / 'outputs' / 'demo-1000it' / 'ablations.md').read_text()
    block = readme.split('<!-- ABLATIONS-1000IT')[1].split('-->', 1)[1].split('<!-- /ABLATIONS-1000IT -->')[0]
    assert block.strip() == printed.strip()
    assert not (tmp_path / 'data').exists() and not (tmp_path / 'work_dirs').exists()  # nothing trained
    recorded = [osp.relpath(osp.join(d, f), osp.join(REPO, 'docs', 'runs'))
                for d, _, files in os.walk(osp.join(REPO, 'docs', 'runs')) for f in files]
    assert recorded and all(f.endswith(('metrics.json', 'scalars.json')) for f in recorded)  # no checkpoints
