"""A user's own dataset through the real tools with a leaf config of two lines: check, train, validate, test,
and predict from the checkpoint alone; every mistake of this path stops before the first iteration with one
line naming the file, the key and the fix.

The data is written by tests/own_dataset.py's own code (not the synthetic generator, not the converters), once
in the COCO panoptic layout and once as COCO instances + stuff label maps that the converter turns into it.
"""
import json
import os
import os.path as osp
import sys

import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, TESTS)
from own_dataset import write_coco_instances_and_stuff, write_coco_panoptic  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess-heavy: `make test-fast` leaves it out


REPO = osp.dirname(TESTS)
BASE = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py')
# what makes the run short and single-process here; none of it describes the dataset
QUICK = ['train_cfg.max_iters=20', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0']


def leaf_config(path: str, data_root: str) -> str:
    text = f'_base_ = [{BASE!r}]\ndata_root = {data_root + "/"!r}\n'
    with open(path, 'w') as f:
        f.write(text)
    return path


def settings_in(config: str) -> int:
    """Assignments in a leaf config besides ``_base_``: the settings a user had to write."""
    lines = [line for line in open(config).read().splitlines() if line.strip() and not line.startswith('#')]
    return sum(1 for line in lines if '=' in line and not line.startswith('_base_'))


def _converted_from_instances_and_stuff(root: str) -> str:
    """The coins as COCO instances (polygons) + stuff label maps, converted by the tool into the COCO layout."""
    import subprocess
    raw = write_coco_instances_and_stuff(osp.join(root, 'raw'), num_train=8, num_val=3, size=64)
    out = osp.join(root, 'converted')
    for split in ('train', 'val'):
        subprocess.run([sys.executable, 'tools/dataset_converters/coco_instances_to_panoptic.py',
                        osp.join(raw, f'instances_{split}.json'), '--image-dir', osp.join(raw, 'images', split),
                        '--stuff-pngs', osp.join(raw, 'stuff', split), '--stuff-classes',
                        osp.join(raw, 'stuff_classes.json'), '--out', out, '--split', split],
                       cwd=REPO, check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope='module', params=['coco-panoptic', 'instances+stuff'])
def coins(request, tmp_path_factory) -> str:
    """The dataset root of the coins in the layout the configs read: written so, or converted."""
    root = str(tmp_path_factory.mktemp('coins'))
    if request.param == 'coco-panoptic':
        return write_coco_panoptic(root, num_train=8, num_val=3, size=64)
    return _converted_from_instances_and_stuff(root)


@pytest.fixture(scope='module')
def trained(coins, tmp_path_factory):
    """tools/train.py on the leaf config: (config, work_dir, completed process)."""
    import subprocess
    root = tmp_path_factory.mktemp('run')
    config = leaf_config(str(root / 'coins.py'), coins)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    work_dir = str(root / 'work')
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options'] + QUICK,
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return config, work_dir, proc


def test_two_line_leaf_config_trains_validates_and_checkpoints(trained, coins):
    config, work_dir, proc = trained
    print(f'settings the dataset needed: {settings_in(config)} (data_root)')
    assert settings_in(config) == 1
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert f'classes: 2 (1 thing: coin; 1 stuff: background) from {coins}/annotations/panoptic_train.json' in log
    assert 'schedule: 20 iterations; LinearLR 0-1; MultiStepLR 0-20 (x0.1 at 18, 19); validation every 5' in log
    assert log.count('coco_panoptic/PQ:') == 4 and 'coco/segm_mAP:' in log and 'sem_seg/mIoU:' in log
    assert osp.isfile(osp.join(work_dir, 'iter_20.pth'))


def test_test_tool_and_image_demo_from_the_checkpoint_alone(trained, coins, tmp_path, tools):
    config, work_dir, proc = trained
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = osp.join(work_dir, 'iter_20.pth')
    result = tools.run(['tools/test.py', config, checkpoint, '--work-dir', str(tmp_path / 'test')])
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'coco_panoptic/PQ:' in result.stdout + result.stderr
    out = tmp_path / 'demo'
    demo = tools.run(['tools/demo/image_demo.py', osp.join(coins, 'val'), '--weights', checkpoint,
                      '--out-dir', str(out)])  # no config: the checkpoint's own
    assert demo.returncode == 0, demo.stderr[-3000:]
    names = sorted(os.listdir(osp.join(coins, 'val')))
    assert sorted(os.listdir(out / 'vis')) == sorted(f'{osp.splitext(n)[0]}_{t}.png' for n in names
                                                     for t in ('panoptic', 'instance', 'semantic'))
    panoptic = json.load(open(out / 'panoptic.json'))
    assert [c['name'] for c in panoptic['categories']] == ['coin', 'background']


def test_the_repository_config_with_the_checkpoint_takes_its_classes(trained, coins, tmp_path, tools, request):
    if request.node.callspec.params['coins'] != 'coco-panoptic':
        pytest.skip('the same checkpoint kind as the other form: run once')
    config, work_dir, proc = trained
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = osp.join(coins, 'val', sorted(os.listdir(osp.join(coins, 'val')))[0])
    demo = tools.run(['tools/demo/image_demo.py', image, BASE, '--weights', osp.join(work_dir, 'iter_20.pth'),
                      '--out-dir', str(tmp_path / 'demo'), '--task', 'semantic'])
    assert demo.returncode == 0, demo.stderr[-3000:]  # the config names 4 + 3 synthetic classes
    assert os.listdir(tmp_path / 'demo' / 'vis') == [osp.splitext(osp.basename(image))[0] + '_semantic.png']


def test_check_dataset_with_the_leaf_config(trained, tools):
    config = trained[0]
    result = tools.run(['tools/misc/check_dataset.py', config])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'checked 11 samples: no problems found' in result.stdout


# -- every mistake of this path, before the first iteration --------------------------------------------------

MISTAKES = {
    'wrong class counts': (
        'model = dict(panoptic_head=dict(num_things_classes=4, num_stuff_classes=3))\n',
        'model.panoptic_head.num_things_classes=4, model.panoptic_head.num_stuff_classes=3 (set in the config) '
        'disagree with {coins}/annotations/panoptic_train.json, which has 1 thing + 1 stuff classes'),
    'classes the file lacks': (
        "train_dataloader = dict(dataset=dict(metainfo=dict(classes=('coin', 'note'))))\n",
        "train_dataloader.dataset.metainfo.classes names ['note'], which are not categories of "
        '{coins}/annotations/panoptic_train.json'),
    'data_root that is not there': (
        "data_root = '/nonexistent/data/'\n",
        'train_dataloader.dataset.data_root /nonexistent/data/ is not a folder'),
    'annotation file that is not there': (
        "train_dataloader = dict(dataset=dict(ann_file='annotations/train.json'))\n",
        'train_dataloader.dataset.ann_file {coins}/annotations/train.json does not exist'),
    'evaluator of another dataset': (
        "val_evaluator = [dict(type='M2FCocoPanopticMetric', ann_file='{other}', seg_prefix='{coins}/')]\n",
        "val_evaluator[0] (M2FCocoPanopticMetric).ann_file {other} lacks the classes ['coin', 'background']"),
}
# mistakes in the model's own options: the builder names the class around the message, still one line
CONFIG_MISTAKES = {
    'criterion option that does not exist': (
        "model = dict(panoptic_head=dict(criterion=dict(mask_loss='dice')))\n",
        "criterion mask_loss='dice': use 'bce' (Mask2Former) or 'focal' (MaskFormer)"),
    'pixel decoder option out of range': (
        'model = dict(panoptic_head=dict(pixel_decoder=dict(num_outs=7)))\n',
        'num_outs must be in [1, 3], got 7'),
}


# one interpreter runs tools/train.py's main() on every mistake's config (what `python tools/train.py` does, without
# paying the start-up once per case): exit status and stderr of each
_RUN_MISTAKES = r"""
import contextlib, io, json, runpy, sys
results, cases, options = {}, json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name, config, work_dir in cases:
    err = io.StringIO()
    sys.argv = ['tools/train.py', config, '--work-dir', work_dir, '--cfg-options'] + options
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_path('tools/train.py', run_name='__main__')
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    results[name] = [code, err.getvalue()]
print('RESULTS ' + json.dumps(results))
"""


@pytest.fixture(scope='module')
def panoptic_coins(tmp_path_factory) -> str:
    return write_coco_panoptic(str(tmp_path_factory.mktemp('coins_mistakes')), num_train=2, num_val=1, size=64)


@pytest.fixture(scope='module')
def mistakes(panoptic_coins, tmp_path_factory):
    import subprocess
    coins = panoptic_coins
    root = tmp_path_factory.mktemp('mistakes')
    other = root / 'other.json'
    other.write_text(json.dumps(dict(images=[], annotations=[], categories=[dict(id=1, name='person', isthing=1)])))
    cases = []
    for name, (extra, _) in {**MISTAKES, **CONFIG_MISTAKES}.items():
        path = root / (name.replace(' ', '_') + '.py')
        path.write_text(f'_base_ = [{BASE!r}]\ndata_root = {coins + "/"!r}\n' + extra.format(coins=coins, other=other))
        cases.append((name, str(path), str(root / 'work')))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, '-c', _RUN_MISTAKES, json.dumps(cases), json.dumps(QUICK)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith('RESULTS ')]
    assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(line[0][len('RESULTS '):]), str(other), proc.stdout


@pytest.mark.parametrize('mistake', sorted(MISTAKES))
def test_each_mistake_stops_before_the_first_iteration_with_one_line(mistake, panoptic_coins, mistakes):
    coins = panoptic_coins
    results, other, stdout = mistakes
    code, stderr = results[mistake]
    message = MISTAKES[mistake][1]
    assert code == 1, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith('m2f_mm: ')]
    assert len(lines) == 1 and 'Traceback' not in stderr, stderr[-3000:]
    assert lines[0].startswith('m2f_mm: ' + message.format(coins=coins, other=other)), lines[0]
    assert 'Fix:' in lines[0]
    assert 'Iter(train)' not in stdout  # no case reached a training iteration


@pytest.mark.parametrize('mistake', sorted(CONFIG_MISTAKES))
def test_model_option_mistakes_end_with_one_line_not_a_traceback(mistake, mistakes):
    results, _, stdout = mistakes
    code, stderr = results[mistake]
    assert code == 1, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith('m2f_mm: ')]
    assert len(lines) == 1 and 'Traceback' not in stderr, stderr[-3000:]
    assert CONFIG_MISTAKES[mistake][1] in lines[0], lines[0]
    assert 'Iter(train)' not in stdout
