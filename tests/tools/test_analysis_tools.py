"""tools/analysis_tools/ and tools/misc/: FLOP counting convention, browsing a dataset, log curves, configs."""
import glob
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from .conftest import PANOPTIC, SEMANTIC, data_options, load_tool, run_tool

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


class _Attention(torch.nn.Module):
    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.fused = fused

    def forward(self, q, k, v):
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        return torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)), -1), v)


@pytest.mark.parametrize('backend', ['mmengine', 'fvcore'])
def test_fused_attention_counts_as_the_two_matmuls(backend):
    if backend == 'fvcore':
        pytest.importorskip('fvcore')
    get_flops = load_tool('tools/analysis_tools/get_flops.py')
    q, k, v = torch.randn(2, 4, 10, 8), torch.randn(2, 4, 30, 8), torch.randn(2, 4, 30, 6)
    fused = get_flops.count(_Wrap(_Attention(True), k, v), q, backend)[0]
    explicit = get_flops.count(_Wrap(_Attention(False), k, v), q, backend)[0]
    assert fused == explicit == 2 * 4 * 10 * 30 * (8 + 6)  # batch x heads x Lq x Lk x (E + Ev)


class _Wrap(torch.nn.Module):
    def __init__(self, attention, k, v):
        super().__init__()
        self.attention, self.k, self.v = attention, k, v

    def forward(self, q):
        return self.attention(q, self.k, self.v)


def test_get_flops_tiny_configs_both_libraries():
    # the semantic config's classes come from its data (label PNGs carry no names), which is not here: give them
    for config, head, options in ((PANOPTIC, 'panoptic_head', []),
                                  (SEMANTIC, 'decode_head', ['--cfg-options', 'model.decode_head.num_classes=7'])):
        out = run_tool(['tools/analysis_tools/get_flops.py', config, '--shape', '64', '96'] + options).stdout
        assert 'input: 1 x 3 x 64 x 96' in out and 'FLOPs:' in out and f'{head}.pixel_decoder' in out
    bad = run_tool(['tools/analysis_tools/get_flops.py', PANOPTIC, '--shape', '60', '96'], check=False)
    assert bad.returncode == 2 and 'multiples of 32' in bad.stderr


def test_browse_dataset_draws_ground_truth(tiny, tmp_path):
    for config in (PANOPTIC, SEMANTIC):
        out = tmp_path / osp.basename(config)
        result = run_tool(['tools/analysis_tools/browse_dataset.py', config, '--output-dir', out, '--num-images',
                           '2', '--cfg-options'] + data_options(config, tiny['data']))
        assert 'drew 2 of 6 train images' in result.stdout
        assert len(list(out.glob('*.png'))) == 2


def test_analyze_logs_curves_and_times(tiny, tmp_path):
    work_dir = osp.dirname(tiny['panoptic']['trained'])
    out = tmp_path / 'curves.png'
    result = run_tool(['tools/analysis_tools/analyze_logs.py', 'plot_curve', work_dir, '--keys', 'loss', 'loss_mask',
                       '--out', out])
    records = [json.loads(line) for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
               for line in open(path)]
    logged = sum('loss' in r for r in records)
    assert logged >= 6  # 30 iterations, logged every 5 (and at mmengine's own extra points)
    assert out.stat().st_size > 0 and f'loss: {logged} points, loss_mask: {logged} points' in result.stdout
    assert 'coco_panoptic/PQ: 1 points' in result.stdout  # the validation at the end of training
    timing = run_tool(['tools/analysis_tools/analyze_logs.py', 'cal_train_time', work_dir]).stdout
    assert f'{logged} logged iterations' in timing and 's/iter on average' in timing
    missing = run_tool(['tools/analysis_tools/analyze_logs.py', 'cal_train_time', str(tmp_path)], check=False)
    assert missing.returncode == 1 and 'no */vis_data/scalars.json' in missing.stderr


def test_print_config_resolves_inheritance_and_options(tmp_path):
    saved = tmp_path / 'full.py'
    out = run_tool(['tools/misc/print_config.py', SEMANTIC, '--cfg-options', 'model.decode_head.num_queries=7',
                    '--save-path', saved]).stdout
    assert "type='M2FSegHead'" in out and 'num_queries=7' in out  # the panoptic base's head, resolved
    assert 'num_queries=7' in saved.read_text()
