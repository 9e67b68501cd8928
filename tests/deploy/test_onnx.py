"""m2f_mm.deploy: the tiny panoptic (mmdet, dynamic height / width) and semantic (mmseg, fixed 64 x 64) configs
exported to ONNX, verified against eager PyTorch, and run with onnxruntime: results identical to inference_model's
(maps, instances, result files, PQ / AP / mIoU).

The models are at their seeded initialisation, with ``object_mask_thr=0`` so that panoptic maps are not empty.
"""
import filecmp
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PANOPTIC = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py')
SEMANTIC = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-semantic.py')
pytest.importorskip('onnxruntime', reason='needs the deploy extra (pip install -e .[deploy])')


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """64 px synthetic val images; each config's model, its .onnx (panoptic: dynamic, traced at 96 x 128;
    semantic: fixed 64 x 64) and the eager results."""
    from m2f_mm.apis import inference_model, init_model
    from m2f_mm.deploy import export_onnx
    root = tmp_path_factory.mktemp('deploy')
    data = str(root / 'data')
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'dataset_converters', 'make_synthetic_data.py'),
                    '--out', data, '--num-train', '1', '--num-val', '3', '--size', '64', '64', '--seed', '5'],
                   check=True, capture_output=True, timeout=300)
    images = sorted(str(p) for p in (root / 'data' / 'val').glob('*.jpg'))
    out = {'images': images, 'root': root}
    for name, config, options in (('panoptic', PANOPTIC, {'model.test_cfg.object_mask_thr': 0.0,
                                                           'model.test_cfg.instance_on': True,
                                                           'model.test_cfg.semantic_on': True}),
                                  ('semantic', SEMANTIC, {})):
        torch.manual_seed(0)
        model = init_model(config, cfg_options=dict(options, data_root=data + '/'))
        path = str(root / f'{name}.onnx')
        spec = export_onnx(model, path, (64, 64)) if name == 'semantic' else export_onnx(model, path, dynamic=True)
        out[name] = dict(model=model, onnx=path, spec=spec, eager=inference_model(model, images))
    return out


def _metrics(samples, data, meta, panoptic=True):
    """PQ (M2FCocoPanopticMetric), mask AP (mmdet's CocoMetric) and mIoU (M2FSemSegMetric) of ``samples`` against
    the synthetic val ground truth, through the evaluators tools/test.py runs."""
    import json

    from mmdet.evaluation import CocoMetric
    from PIL import Image

    from m2f_mm.evaluation.metrics import M2FCocoPanopticMetric, M2FSemSegMetric
    gt = json.load(open(f'{data}/annotations/panoptic_val.json'))
    ids = {osp.splitext(i['file_name'])[0]: i['id'] for i in gt['images']}
    metrics = [M2FSemSegMetric(iou_metrics=['mIoU'])]
    if panoptic:
        metrics += [M2FCocoPanopticMetric(ann_file=f'{data}/annotations/panoptic_val.json',
                                          seg_prefix=f'{data}/annotations/panoptic_val/'),
                    CocoMetric(ann_file=f'{data}/annotations/instances_val.json', metric=['segm'])]
    for metric in metrics:
        metric.dataset_meta = meta
    for sample in samples:
        name = osp.splitext(osp.basename(sample.metainfo['img_path']))[0]
        record = sample.to_dict()
        record.update(img_id=ids[name], gt_sem_seg=dict(sem_seg=torch.from_numpy(
            np.array(Image.open(f'{data}/annotations/semantic_val/{name}.png')).astype(np.int64))[None]))
        for metric in metrics:
            metric.process({}, [record])
    return {key: value for metric in metrics for key, value in metric.evaluate(len(samples)).items()}


@pytest.mark.slow
@pytest.mark.parametrize('name', ['panoptic', 'semantic'])
def test_export_verifies_within_1e4_of_the_logits_scale(exported, name):
    from m2f_mm.deploy import verify
    from m2f_mm.deploy.runtime import read_image
    entry = exported[name]
    assert entry['spec']['input_shape'] == ([64, 64] if name == 'semantic' else None)
    assert entry['spec']['scope'] == ('mmseg' if name == 'semantic' else 'mmdet')
    result = verify(entry['model'], entry['onnx'], read_image(exported['images'][0]))
    assert result['ok'] and result['relative'] <= 1e-4, result
    assert 0 < result['mask_max_diff'] < 1e-3  # really compared: float rounding differs a little
    if name == 'panoptic':  # dynamic: sizes other than the traced 96 x 128, non-square both ways
        for shape in ((160, 64, 3), (32, 224, 3)):
            image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
            result = verify(entry['model'], entry['onnx'], image)
            assert result['ok'] and result['relative'] <= 1e-4, (shape, result)


def test_panoptic_instance_semantic_results_equal_eager(exported, tmp_path):
    from m2f_mm.apis import ResultWriter, prediction_arrays
    from m2f_mm.deploy import OnnxModel, inference_onnx
    entry = exported['panoptic']
    model = OnnxModel(entry['onnx'])
    assert model.spec['test_cfg']['object_mask_thr'] == 0.0  # the fusion settings travel with the file
    samples = inference_onnx(model, exported['images'])
    writers = {key: ResultWriter(str(tmp_path / key), model.dataset_meta['classes'],
                                 len(model.dataset_meta['thing_classes'])) for key in ('eager', 'onnx')}
    segments = 0
    for path, eager, onnx in zip(exported['images'], entry['eager'], samples):
        assert onnx.metainfo['img_path'] == path and onnx.metainfo['batch_input_shape'] == (64, 64)
        a, b = prediction_arrays(eager), prediction_arrays(onnx)
        assert sorted(a) == sorted(b) == ['instance', 'panoptic', 'semantic']
        np.testing.assert_array_equal(a['panoptic']['pan'], b['panoptic']['pan'])
        np.testing.assert_array_equal(a['semantic']['sem'], b['semantic']['sem'])
        for key in ('masks', 'labels', 'bboxes'):
            np.testing.assert_array_equal(a['instance'][key], b['instance'][key])
        np.testing.assert_allclose(a['instance']['scores'], b['instance']['scores'], rtol=0, atol=1e-5)
        segments += len(np.unique(a['panoptic']['pan']))
        name = osp.splitext(osp.basename(path))[0]
        writers['eager'].add(eager, name)
        writers['onnx'].add(onnx, name)
    assert segments > len(exported['images'])  # not empty maps
    for writer in writers.values():
        writer.close()
    data = str(exported['root'] / 'data')
    scores = {key: _metrics(found, data, model.dataset_meta) for key, found in (('eager', entry['eager']),
                                                                                 ('onnx', samples))}
    assert {'coco_panoptic/PQ', 'coco/segm_mAP', 'mIoU'} <= set(scores['onnx'])
    assert scores['onnx'] == scores['eager']
    for rel in ['panoptic.json', 'images.json'] + [f'{kind}/{osp.splitext(osp.basename(p))[0]}.png'
                                                   for p in exported['images'] for kind in ('panoptic', 'semantic')]:
        assert filecmp.cmp(tmp_path / 'eager' / rel, tmp_path / 'onnx' / rel, shallow=False), rel


def test_semantic_config_results_equal_eager(exported):
    from m2f_mm.deploy import OnnxModel, inference_onnx
    entry = exported['semantic']
    samples = inference_onnx(OnnxModel(entry['onnx']), exported['images'])
    for eager, onnx in zip(entry['eager'], samples):
        np.testing.assert_array_equal(eager.pred_sem_seg.data.numpy(), onnx.pred_sem_seg.data.numpy())
        torch.testing.assert_close(onnx.seg_logits.data, eager.seg_logits.data, rtol=0, atol=1e-5)
        assert onnx.pred_sem_seg.data.shape == (1, 64, 64)
    data = str(exported['root'] / 'data')
    meta = entry['model'].dataset_meta
    eager, onnx = (_metrics(found, data, meta, panoptic=False) for found in (entry['eager'], samples))
    assert 'mIoU' in onnx and onnx == eager


def test_larger_images_are_shrunk_into_the_exported_size(exported):
    from m2f_mm.deploy import OnnxModel
    model = OnnxModel(exported['semantic']['onnx'])
    images, meta = model.preprocess(np.full((128, 96, 3), 255, np.uint8))
    assert images.shape == (1, 3, 64, 64) and meta['img_shape'] == (64, 48) and meta['ori_shape'] == (128, 96)
    sample = model.predict(np.full((128, 96, 3), 255, np.uint8))
    assert sample.pred_sem_seg.data.shape == (1, 128, 96)  # results at the original size
    assert np.all(images[0, :, :, 48:] == 0)  # padding: the preprocessor's pad value after normalising


def test_bad_shape_and_missing_spec_say_what_to_do(exported, tmp_path):
    from m2f_mm.deploy import OnnxModel, export_onnx
    with pytest.raises(ValueError, match='multiples of'):
        export_onnx(exported['semantic']['model'], str(tmp_path / 'x.onnx'), (50, 64))
    with pytest.raises(ValueError, match='--shape H W'):
        export_onnx(exported['semantic']['model'], str(tmp_path / 'x.onnx'))  # no Resize in the tiny pipeline
    alone = tmp_path / 'alone.onnx'
    alone.write_bytes(open(exported['semantic']['onnx'], 'rb').read())
    with pytest.raises(FileNotFoundError, match='alone.m2f.json.*pytorch2onnx'):
        OnnxModel(str(alone))


@pytest.mark.slow
def test_tool_exit_status_follows_the_tolerance(exported, capsys):
    """tools/deployment/pytorch2onnx.py from a checkpoint alone ('-': its stored config) exits 1 above --tol
    (docs/deployment.md's test runs it within the tolerance); --shape and --dynamic exclude each other."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('m2f_tool_pytorch2onnx',
                                                  osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    model, root = exported['semantic']['model'], exported['root']
    ckpt = str(root / 'semantic.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': model.dataset_meta,
                                                        'cfg': model.cfg.pretty_text}}, ckpt)
    out = str(root / 'tool' / 'model.onnx')
    assert tool.main(['-', ckpt, '--out', out, '--shape', '64', '64', '--verify', '--tol', '1e-12']) == 1
    assert '-> FAILED' in capsys.readouterr().out and osp.isfile(str(root / 'tool' / 'model.m2f.json'))
    with pytest.raises(SystemExit):
        tool.main(['-', ckpt, '--out', out, '--dynamic', '--shape', '64', '64'])
    assert 'not allowed with argument' in capsys.readouterr().err


def test_missing_extra_names_it(monkeypatch):
    """Without onnxruntime: importing m2f_mm.deploy works, using it fails with one line naming the extra."""
    from m2f_mm.deploy import MissingDeployExtra, OnnxModel
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # what an interpreter without the package does
    with pytest.raises(MissingDeployExtra) as info:
        OnnxModel('model.onnx')
    message = str(info.value)
    assert '\n' not in message and 'onnxruntime is not installed' in message and ".[deploy]" in message


@pytest.mark.slow
def test_torch_export_program_restores_and_equals_eager(exported, tmp_path):
    """The torch.export path: the saved ExportedProgram, loaded back, gives eager's logits on a real image."""
    from m2f_mm.deploy import LogitsNet, export_program
    model = exported['semantic']['model']
    path = str(tmp_path / 'semantic.pt2')
    export_program(model, path, (64, 64))
    restored = torch.export.load(path).module()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = LogitsNet(model).eval()(images)
        got = restored(images)
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in expected]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert osp.exists(str(tmp_path / 'semantic.m2f.json'))


@pytest.mark.slow
def test_all_sets_export_stacks_every_set_and_the_runtime_fuses_the_last(exported, tmp_path):
    from m2f_mm.deploy import LogitsNet, OnnxModel, export_onnx, verify
    model = exported['semantic']['model']
    path = str(tmp_path / 'all_sets.onnx')
    spec = export_onnx(model, path, (64, 64), all_sets=True)
    assert spec['all_sets'] is True
    onnx_model = OnnxModel(path)
    images = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    stacked = onnx_model.session.run(None, {'images': images})
    num_sets = model.decode_head.transformer_decoder.num_layers + 1
    assert stacked[0].shape[0] == stacked[1].shape[0] == num_sets
    with torch.no_grad():
        final = LogitsNet(model).eval()(torch.from_numpy(images))
    for got, want in zip(onnx_model.logits(images), final):  # the runtime's view: the final set only
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=1e-4)
    assert verify(model, path)['ok']
