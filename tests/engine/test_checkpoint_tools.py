"""The tools with durable checkpoints: tools/train.py killed while writing one resumes from the previous
one; a full disk stops it with one line and the previous checkpoint intact; its checkpoints load with
torch.load's default (mmdet's and mmseg's inferencers read them as they are); a file that is not a
checkpoint stops tools/test.py and init_model with one line."""
import json
import os
import os.path as osp

import pytest
import torch

from m2f_mm.checkpoints.loading import checkpoint_problem

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


SEMANTIC = 'configs/m2f_r18-q24_1xb8-2k_synthetic-semantic.py'


def _config(tools, data, path, hooks=(), max_keep=1) -> str:
    extra = f"default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts={max_keep}))\n"
    if hooks:
        extra += ("custom_imports = dict(imports=['m2f_mm', '_test_hooks'], allow_failed_imports=False)\n"
                  f"custom_hooks = {list(hooks)!r}\n")
    return tools.write_config(str(path), data, max_iters=4, extra=extra)


def _one_line_error(result) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('m2f_mm: '), result.stderr[-3000:]
    return last


@pytest.fixture
def plain_mmengine_loading(monkeypatch):
    """mmengine's own loader for local files (torch.load with its default weights_only=True), whatever an
    M2FRunner built earlier in this process installed."""
    from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.setitem(CheckpointLoader._schemes, '', load_from_local)


def _det_inference(checkpoint: str, image: str, out_dir: str):
    import sys

    from mmdet.apis import DetInferencer
    # the run was trained with the test hooks in custom_imports, which the checkpoint's config keeps
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    inferencer = DetInferencer(model=None, weights=checkpoint, device='cpu')  # the config saved in the checkpoint
    return inferencer(image, out_dir=out_dir, return_datasamples=True)['predictions'][0]


def test_killed_while_writing_a_checkpoint_then_resumed(tiny_data, tmp_path, tools, plain_mmengine_loading):
    config = _config(tools, tiny_data, tmp_path / 'cfg.py')
    killer = _config(tools, tiny_data, tmp_path / 'killer.py',
                     hooks=[dict(type='KillDuringCheckpointWriteHook', name='iter_4.pth')])
    work_dir = tmp_path / 'work'
    killed = tools.run(['tools/train.py', killer, '--work-dir', str(work_dir)])
    assert killed.returncode == -9, killed.stderr[-3000:]
    # Before: with max_keep_ckpts=1 iter_2.pth was deleted first and a half-written iter_4.pth was left.
    assert sorted(n for n in os.listdir(work_dir) if n.endswith('.pth')) == ['iter_2.pth']
    assert [n for n in os.listdir(work_dir) if n.startswith('.iter_4.pth.')], 'the kill did not hit the write'
    named = open(work_dir / 'last_checkpoint').read()
    assert named == str(work_dir / 'iter_2.pth') and torch.load(named)['meta']['iter'] == 2

    # What mmengine's own hook could leave (a broken newest checkpoint named by last_checkpoint) is skipped.
    broken = work_dir / 'iter_3.pth'
    broken.write_bytes(open(named, 'rb').read()[:1_000_000])
    (work_dir / 'last_checkpoint').write_text(str(broken))
    resumed = tools.run(['tools/train.py', config, '--work-dir', str(work_dir), '--resume'])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f'names {broken}, which is truncated (1000000 bytes' in log
    assert f'resuming from {named}, the newest intact checkpoint' in log and 'resumed epoch: 0, iter: 2' in log
    assert 'a checkpoint a killed run had not finished writing' in log  # the killed writer's temp file
    assert not [n for n in os.listdir(work_dir) if n.startswith('.')]
    assert sorted(n for n in os.listdir(work_dir) if n.startswith('iter_4')) == ['iter_4.pth']
    assert not osp.exists(named)  # max_keep_ckpts=1, deleted once iter_4.pth was on disk
    final = str(work_dir / 'iter_4.pth')
    assert open(work_dir / 'last_checkpoint').read() == final

    # torch's default loader (weights_only=True) reads it, and so does mmdet's inferencer as documented.
    checkpoint = torch.load(final)
    assert checkpoint['meta']['iter'] == 4 and 'panoptic_head.query_feat.weight' in checkpoint['state_dict']
    from m2f_mm.checkpoints.safe_load import load_local_checkpoint
    hub = load_local_checkpoint(final)['message_hub']  # m2f_mm's loader gives mmengine's log buffers back
    assert len(hub['log_scalars']['train/loss'].data[0]) == 4  # 2 iterations before the kill, 2 after
    image = osp.join(tiny_data, 'val', sorted(os.listdir(osp.join(tiny_data, 'val')))[0])
    sample = _det_inference(final, image, str(tmp_path / 'det'))
    assert sample.pred_panoptic_seg.sem_seg.shape[-2:] == sample.metainfo['ori_shape']
    assert osp.isfile(tmp_path / 'det' / 'vis' / osp.basename(image))


def test_full_disk_stops_with_one_line_and_keeps_the_previous_checkpoint(tiny_data, tmp_path, tools):
    limited = _config(tools, tiny_data, tmp_path / 'full.py',
                      hooks=[dict(type='FileSizeLimitHook', at_iter=2, limit=1_000_000)])
    work_dir = tmp_path / 'work'
    result = tools.run(['tools/train.py', limited, '--work-dir', str(work_dir)])
    line = _one_line_error(result)
    assert line.startswith(f'm2f_mm: could not write checkpoint {work_dir}/iter_4.pth (File too large; ')
    assert ' free of ' in line and 'the previous checkpoint and last_checkpoint are unchanged' in line
    assert sorted(os.listdir(work_dir)).count('iter_2.pth') == 1 and not osp.exists(work_dir / 'iter_4.pth')
    assert not [n for n in os.listdir(work_dir) if n.startswith('.')]  # the partial file was removed
    assert open(work_dir / 'last_checkpoint').read() == str(work_dir / 'iter_2.pth')
    assert checkpoint_problem(str(work_dir / 'iter_2.pth')) is None
    assert torch.load(work_dir / 'iter_2.pth')['meta']['iter'] == 2


def test_mmseg_inferencer_reads_a_semantic_checkpoint_from_train(tiny_data, tmp_path, tools, plain_mmengine_loading):
    work_dir = tmp_path / 'sem'
    options = [f'{key}={tiny_data}/' for key in ('data_root', 'train_dataloader.dataset.data_root',
                                                 'val_dataloader.dataset.data_root',
                                                 'test_dataloader.dataset.data_root')]
    trained = tools.run(['tools/train.py', SEMANTIC, '--work-dir', str(work_dir), '--cfg-options', *options,
                         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                         'train_dataloader.batch_size=1', 'train_cfg.max_iters=1', 'train_cfg.val_interval=10',
                         'default_hooks.checkpoint.interval=1'])
    assert trained.returncode == 0, trained.stderr[-3000:]
    from mmseg.apis import MMSegInferencer
    image = osp.join(tiny_data, 'val', sorted(os.listdir(osp.join(tiny_data, 'val')))[0])
    inferencer = MMSegInferencer(model=None, weights=str(work_dir / 'iter_1.pth'), device='cpu')  # its own config
    result = inferencer(image, out_dir=str(tmp_path / 'seg'))
    from PIL import Image
    width, height = Image.open(image).size
    assert result['predictions'].shape == (height, width) and 0 <= result['predictions'].min()
    assert result['predictions'].max() < 7 and len(os.listdir(tmp_path / 'seg' / 'pred')) == 1


def _bad_checkpoints(root, real: str) -> dict:
    class RunsCommand:
        def __reduce__(self):
            return (os.system, ('echo pwned',))
    (root / 'empty.pth').write_bytes(b'')
    (root / 'truncated.pth').write_bytes(open(real, 'rb').read()[:300_000])
    (root / 'folder.pth').mkdir()
    torch.save({'state_dict': {}, 'x': RunsCommand()}, root / 'evil.pth')
    return {case: str(root / f'{case}.pth') for case in ('empty', 'truncated', 'folder', 'evil')}


EXPECTED = {'empty': 'is empty (0 bytes): it was cut off while being written',
            'truncated': 'is truncated (300000 bytes; the end of its zip archive is missing)',
            'folder': 'is a directory, not a checkpoint file',
            'evil': "refusing to unpickle 'posix.system'"}

# tools/test.py in one interpreter for all cases (one import instead of four): an exception run_tool
# does not turn into its one line is recorded as a traceback.
DRIVER = '''
import contextlib, io, json, runpy, sys
config, work_dir, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
results = {}
for case, path in cases.items():
    sys.argv = ['tools/test.py', config, path, '--work-dir', work_dir]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_path('tools/test.py', run_name='__main__')
        status = 0
    except SystemExit as exit:
        status = exit.code
    except BaseException as exc:
        status = 'traceback: ' + type(exc).__name__
    results[case] = [status, err.getvalue()]
print('RESULTS' + json.dumps(results))
'''


def test_unreadable_checkpoints_stop_test_and_init_model_with_one_line(tiny_data, tmp_path, tools):
    from m2f_mm.apis import init_model
    from m2f_mm.errors import M2FCheckpointError
    config = tools.write_config(str(tmp_path / 'cfg.py'), tiny_data)
    real = tmp_path / 'real.pth'
    torch.save({'state_dict': {'w': torch.zeros(100_000)}}, real)
    cases = _bad_checkpoints(tmp_path, str(real))
    for case, path in cases.items():
        with pytest.raises(M2FCheckpointError) as info:
            init_model(config, path)
        assert '\n' not in str(info.value) and path in str(info.value) and EXPECTED[case] in str(info.value)
    import importlib.util
    spec = importlib.util.spec_from_file_location('image_demo_tool', osp.join(tools.repo, 'tools/demo/image_demo.py'))
    image_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(image_demo)
    image = osp.join(tiny_data, 'val', sorted(os.listdir(osp.join(tiny_data, 'val')))[0])
    for case in ('empty', 'evil'):
        with pytest.raises(SystemExit, match=f'image_demo: checkpoint {cases[case]}') as info:
            image_demo.main([image, config, '--weights', cases[case], '--out-dir', str(tmp_path / 'demo')])
        assert '\n' not in str(info.value.code) and EXPECTED[case] in str(info.value.code)
    out = tools.run(['-c', DRIVER, config, str(tmp_path / 'w'), json.dumps(cases)])
    results = json.loads(out.stdout.split('RESULTS')[-1])
    for case, (status, stderr) in results.items():
        assert status == 1, (case, status, stderr[-2000:])
        line = stderr.strip().splitlines()[-1]
        assert line.startswith(f'm2f_mm: checkpoint {cases[case]}') and EXPECTED[case] in line, (case, line)
        assert 'Traceback' not in stderr
    # no way around the refusal is suggested for a global that runs commands
    assert 'add_safe_globals' not in results['evil'][1] and 'posix.system is not a data class' in results['evil'][1]
