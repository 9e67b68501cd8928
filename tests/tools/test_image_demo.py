"""tools/demo/image_demo.py and the m2f_mm.apis it runs on: pictures and COCO / mmseg result files for a
panoptic (mmdet) and a semantic (mmseg) config, with a trained and an untrained (empty) checkpoint."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from .conftest import PANOPTIC, REPO, SEMANTIC, load_tool, run_tool

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


def _demo(inputs, config, ckpt, out, *extra):
    return run_tool(['tools/demo/image_demo.py', inputs, config, '--weights', ckpt, '--out-dir', out] + list(extra))


def _check_panoptic_files(out, names, num_classes):
    """The COCO panoptic PNG of each image holds exactly the segments its JSON lists, with their areas."""
    pan = json.loads((out / 'panoptic.json').read_text())
    assert [a['file_name'] for a in pan['annotations']] == [f'{n}.png' for n in names]
    assert {c['id'] for c in pan['categories']} == set(range(num_classes))
    counts = []
    for ann in pan['annotations']:
        rgb = np.array(Image.open(out / 'panoptic' / ann['file_name'])).astype(np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        listed = {s['id']: s for s in ann['segments_info']}
        assert set(np.unique(ids)) - {0} == set(listed)
        for seg_id, seg in listed.items():
            assert seg['area'] == int((ids == seg_id).sum())
            assert 0 <= seg['category_id'] < num_classes
        counts.append(len(listed))
    return counts


@pytest.mark.parametrize('state', ['trained', 'untrained'])
def test_panoptic_config_writes_pictures_and_coco_results(tiny, tmp_path, state):
    out = tmp_path / 'out'
    extra = ['--cfg-options', 'model.test_cfg.object_mask_thr=0.5'] if state == 'trained' else []
    result = _demo(tiny['data'] + '/val', PANOPTIC, tiny['panoptic'][state], out, *extra)
    names = [p.split('/')[-1][:-4] for p in tiny['val_images']]
    for name in names:
        for task in ('panoptic', 'instance', 'semantic'):
            figure = Image.open(out / 'vis' / f'{name}_{task}.png')
            assert figure.width > figure.height  # image | result side by side, title and legend rows
        sem = np.array(Image.open(out / 'semantic' / f'{name}.png'))
        assert sem.shape == (64, 64) and set(np.unique(sem)) <= set(range(7)) | {255}
    counts = _check_panoptic_files(out, names, 7)
    instances = json.loads((out / 'instances.json').read_text())
    for entry in instances:
        mask = mask_utils.decode(entry['segmentation'])
        assert mask.shape == (64, 64) and 0 <= entry['category_id'] < 4  # things only
        if mask.any():
            ys, xs = np.nonzero(mask)
            assert entry['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    if state == 'trained':
        assert sum(counts) > 0
    else:
        assert counts == [0] * len(names)  # empty, drawn and saved rather than a crash
        figure = np.array(Image.open(out / 'vis' / f'{names[0]}_panoptic.png'))
        # nothing painted: the result column (64 px enlarged to 320, after a 4 px gap) shows the image unchanged
        assert figure.shape[1] == 2 * 320 + 4
        assert np.array_equal(figure[30:330, :320], figure[30:330, 324:])
    assert 'wrote' in result.stdout


@pytest.mark.parametrize('state', ['trained', 'untrained'])
def test_semantic_config_writes_label_pngs_equal_to_the_api(tiny, tmp_path, state):
    from m2f_mm.apis import inference_model, init_model
    out = tmp_path / 'out'
    image = tiny['val_images'][0]
    _demo(image, SEMANTIC, tiny['semantic'][state], out)
    name = image.split('/')[-1][:-4]
    assert Image.open(out / 'vis' / f'{name}_semantic.png').width > 64
    saved = np.array(Image.open(out / 'semantic' / f'{name}.png'))
    assert not (out / 'panoptic.json').exists()  # an mmseg config has no panoptic output
    model = init_model(f'{REPO}/{SEMANTIC}', tiny['semantic'][state])
    sample = inference_model(model, image)
    assert np.array_equal(saved, sample.pred_sem_seg.data[0].numpy())


def test_semantic_config_refuses_panoptic_task(tiny, tmp_path):
    result = run_tool(['tools/demo/image_demo.py', tiny['val_images'][0], SEMANTIC, '--weights',
                       tiny['semantic']['trained'], '--task', 'panoptic', '--out-dir', tmp_path], check=False)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'mmseg (semantic) config' in result.stderr and 'needs an mmdet config' in result.stderr


def test_task_flag_computes_only_the_asked_tasks(tiny, tmp_path):
    _demo(tiny['val_images'][0], PANOPTIC, tiny['panoptic']['trained'], tmp_path, '--task', 'semantic')
    assert sorted(p.name for p in (tmp_path / 'vis').iterdir()) == [
        tiny['val_images'][0].split('/')[-1][:-4] + '_semantic.png']
    assert not (tmp_path / 'panoptic.json').exists() and not (tmp_path / 'instances.json').exists()


def test_inference_model_same_from_path_and_array(tiny):
    import mmcv

    from m2f_mm.apis import inference_model, init_model
    model = init_model(f'{REPO}/{PANOPTIC}', tiny['panoptic']['trained'])
    assert list(model.dataset_meta['classes'][:2]) == ['circle', 'square']  # saved by the runner
    paths = tiny['val_images']
    from_paths = inference_model(model, paths)
    from_arrays = inference_model(model, [mmcv.imread(p) for p in paths])
    assert len(from_paths) == len(from_arrays) == len(paths)
    for a, b in zip(from_paths, from_arrays):
        assert a.pred_panoptic_seg.sem_seg.equal(b.pred_panoptic_seg.sem_seg)
        assert a.pred_sem_seg.sem_seg.equal(b.pred_sem_seg.sem_seg)
        assert a.pred_sem_seg.sem_seg.shape[-2:] == (64, 64)


def test_api_errors_name_the_problem(tiny, tmp_path):
    from m2f_mm.apis import inference_model, init_model
    with pytest.raises(FileNotFoundError, match='checkpoint file'):
        init_model(f'{REPO}/{PANOPTIC}', str(tmp_path / 'missing.pth'))
    model = init_model(f'{REPO}/{PANOPTIC}')
    with pytest.raises(FileNotFoundError, match='image file'):
        inference_model(model, str(tmp_path / 'missing.jpg'))


def test_folder_inputs_skip_non_images_and_bound_large_images(tiny, tmp_path):
    """A text file and a text file named .jpg are skipped with a line each and counted; a 200x120 image
    is shrunk to --max-size 64 (64x38) with a line, and its results are the model's on the shrunk image."""
    import shutil

    import mmcv

    from m2f_mm.apis import inference_model, init_model
    folder = tmp_path / 'in'
    folder.mkdir()
    shutil.copy(tiny['val_images'][0], folder / 'small.jpg')
    big = np.random.default_rng(0).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    Image.fromarray(big).save(folder / 'big.png')
    (folder / 'notes.txt').write_text('not an image')
    (folder / 'broken.jpg').write_text('not an image either')
    out = tmp_path / 'out'
    result = _demo(str(folder), SEMANTIC, tiny['semantic']['trained'], out, '--max-size', '64')
    lines = result.stdout.splitlines()
    for name in ('broken.jpg', 'notes.txt'):
        assert sum(line.startswith(f'{folder / name}: skipped, not a readable image (') for line in lines) == 1
    assert f'{folder / "big.png"}: 200x120 (WxH) is larger than --max-size 64: resized to 64x38; its results are ' \
           'at that size' in lines
    assert sum('resized' in line for line in lines) == 1  # the 64 px image is left as it is
    assert lines[-1] == '2 image(s) predicted, 2 file(s) skipped as not readable images'
    images = {entry['file_name']: (entry['height'], entry['width'])
              for entry in json.loads((out / 'images.json').read_text())}
    assert images == {'big.png': (38, 64), 'small.jpg': (64, 64)}
    saved = np.array(Image.open(out / 'semantic' / 'big.png'))
    model = init_model(f'{REPO}/{SEMANTIC}', tiny['semantic']['trained'])
    shrunk = mmcv.imresize(mmcv.rgb2bgr(big), (64, 38), interpolation='area')
    assert np.array_equal(saved, inference_model(model, shrunk).pred_sem_seg.data[0].numpy())
    assert Image.open(out / 'vis' / 'big_semantic.png').height > 38  # drawn, at the shrunk size enlarged


def test_no_readable_image_exits_non_zero_with_one_line(tiny, tmp_path):
    (tmp_path / 'notes.txt').write_text('not an image')
    result = run_tool(['tools/demo/image_demo.py', tmp_path / 'notes.txt', SEMANTIC, '--weights',
                       tiny['semantic']['untrained'], '--out-dir', tmp_path / 'out'], check=False)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == \
        f"image_demo: none of the 1 file(s) in '{tmp_path / 'notes.txt'}' is a readable image"
    assert '0 image(s) predicted, 1 file(s) skipped' in result.stdout


def test_help_states_the_size_bound(capsys):
    with pytest.raises(SystemExit):
        load_tool('tools/demo/image_demo.py').parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert '--max-size N' in text and 'shrunk to N' in text and '(default: 2048)' in text
