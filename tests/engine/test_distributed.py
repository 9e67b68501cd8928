"""Multi-process training and evaluation on CPU (gloo, 127.0.0.1), through the real launch scripts.

Every run has a timeout: a hang fails the test instead of stalling the suite.
"""
import json
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from m2f_mm.engine.distributed import check_world_fits, ddp_wrapper_cfg, rank_seed, resolve_backend, slurm_rank_env
from m2f_mm.errors import M2FLaunchError

TIMEOUT = 600
HOOKS = "custom_imports = dict(imports=['m2f_mm', '_test_hooks'], allow_failed_imports=False)\n" \
        "custom_hooks = [dict(type='RecordRankHook', out_dir={out!r})]"


# -- pure parts ------------------------------------------------------------------------------------

def test_backend_follows_the_machine_unless_it_cannot_work():
    assert resolve_backend('auto', cuda_available=False) == 'gloo'
    assert resolve_backend(None, cuda_available=True) == 'nccl'
    assert resolve_backend('gloo', cuda_available=True) == 'gloo'
    with pytest.raises(M2FLaunchError, match="backend='nccl' needs CUDA.*env_cfg.dist_cfg.backend=gloo"):
        resolve_backend('nccl', cuda_available=False)


def test_cpu_ddp_gets_no_device_ids_and_cuda_is_untouched():
    assert ddp_wrapper_cfg(None, False, on_cuda=True) is None
    assert ddp_wrapper_cfg(None, True, on_cuda=False) == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False, find_unused_parameters=True, device_ids=None)
    assert ddp_wrapper_cfg(dict(detect_anomalous_params=True), False, on_cuda=False) == dict(
        detect_anomalous_params=True, type='MMDistributedDataParallel', device_ids=None)


def test_slurm_variables_become_torchrun_variables():
    env = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_NODELIST='node[3-4]', SLURM_LOCALID='1')
    out = slurm_rank_env(env, num_gpus=4, resolve_host=lambda nodes: 'node3')
    assert out == dict(RANK='5', LOCAL_RANK='1', WORLD_SIZE='8', MASTER_ADDR='node3', MASTER_PORT='29500')
    del env['SLURM_LOCALID']
    assert slurm_rank_env(dict(env, MASTER_ADDR='10.0.0.1'), num_gpus=4)['LOCAL_RANK'] == '1'  # 5 % 4
    with pytest.raises(M2FLaunchError, match='SLURM_NTASKS'):
        slurm_rank_env(dict(SLURM_PROCID='0', SLURM_NODELIST='n'), num_gpus=1)


def test_rank_seeds_differ_per_rank_and_repeat_per_seed():
    seeds = [rank_seed(0, r) for r in range(4)]
    assert len(set(seeds)) == 4 and seeds == [rank_seed(0, r) for r in range(4)] and rank_seed(1, 0) != seeds[0]
    check_world_fits(2, 2)
    with pytest.raises(M2FLaunchError, match='has 1 samples but 2 processes'):
        check_world_fits(1, 2)


# -- real launches ---------------------------------------------------------------------------------

def _records(out: str, world: int):
    weights = [torch.load(osp.join(out, f'weights_rank{r}.pth'), map_location='cpu') for r in range(world)]
    records = [json.load(open(osp.join(out, f'records_rank{r}.json'))) for r in range(world)]
    return weights, records


def _same(a: dict, b: dict, local_bn_stats: bool = False) -> bool:
    """Equal state dicts; with ``local_bn_stats``, BatchNorm running statistics may differ: each process
    updates them from its own images (plain BN, as in mmdet; the R50/Swin recipes freeze BN)."""
    local = ('running_mean', 'running_var') if local_bn_stats else ()
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a if not k.endswith(local))


def _train_two(tools, tiny_data, root):
    """A 4-iteration config (batch 1 per process) recording each rank into ``root/records``."""
    out = str(root / 'records')
    os.makedirs(out, exist_ok=True)
    config = tools.write_config(str(root / 'cfg.py'), tiny_data, max_iters=4, batch_size=1,
                                extra=HOOKS.format(out=out))
    return out, config


@pytest.mark.slow
def test_two_processes_train_identically_and_only_rank0_writes(tiny_data, tmp_path, tools):
    out, config = _train_two(tools, tiny_data, tmp_path)
    work = str(tmp_path / 'work')
    run = tools.run(['tools/dist_train.sh', config, '2', '--work-dir', work], env=dict(PORT=str(tools.free_port())),
                    timeout=TIMEOUT)
    assert run.returncode == 0, run.stderr[-3000:]
    (w0, w1), (r0, r1) = _records(out, 2)
    assert _same(w0, w1, local_bn_stats=True)              # gradients were averaged: one model
    writers = open(osp.join(out, 'writers.txt')).read().split('\n')
    assert [line.split() for line in writers if line] == [['0', 'iter_2.pth'], ['0', 'iter_4.pth']]
    assert r0['rng'] != r1['rng']                          # each rank draws its own points
    assert osp.exists(osp.join(work, 'iter_4.pth'))

    # The same run on two "nodes" (one process each, both on 127.0.0.1) ends with the same model, and
    # the same random streams: reproducible for a given seed and world size.
    out2, config2 = _train_two(tools, tiny_data, tmp_path / 'nodes')
    port = str(tools.free_port())
    env = dict(os.environ, OMP_NUM_THREADS='1', NNODES='2', MASTER_ADDR='127.0.0.1', PORT=port,
               PYTHONPATH=osp.join(tools.repo, 'tests', 'engine'), M2F_PYTHON=sys.executable)
    nodes = [subprocess.Popen(['bash', 'tools/dist_train.sh', config2, '1', '--work-dir', str(tmp_path / f'n{r}')],
                              cwd=tools.repo, env=dict(env, NODE_RANK=str(r)), stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / f'node{r}.err', 'w'))
             for r in (1, 0)]
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in nodes]
    finally:
        for p in nodes:
            p.kill()
    assert codes == [0, 0], (tmp_path / 'node0.err').read_text()[-3000:]
    (n0, n1), (q0, q1) = _records(out2, 2)
    assert _same(n0, n1, local_bn_stats=True) and _same(n0, w0) and _same(n1, w1)
    assert (q0['rng'], q1['rng']) == (r0['rng'], r1['rng'])

    # Evaluation on 2 ranks of a 3-image val set (not a multiple of 2) equals 1 rank's, metric by metric.
    checkpoint = osp.join(work, 'iter_4.pth')
    lenient = ['--cfg-options', 'model.test_cfg.object_mask_thr=0.0', 'model.test_cfg.iou_thr=0.0']
    one = tools.run(['tools/test.py', config, checkpoint, '--work-dir', str(tmp_path / 'eval1')] + lenient,
                    timeout=TIMEOUT)
    two = tools.run(['tools/dist_test.sh', config, checkpoint, '2', '--work-dir', str(tmp_path / 'eval2')] + lenient,
                    env=dict(PORT=str(tools.free_port())), timeout=TIMEOUT)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    metrics = [_metrics(str(tmp_path / d)) for d in ('eval1', 'eval2')]
    assert metrics[0] == metrics[1]
    assert {'coco_panoptic/PQ', 'coco/segm_mAP', 'sem_seg/mIoU'} <= set(metrics[0]) and metrics[0]['sem_seg/mIoU'] > 0


def _metrics(work_dir: str) -> dict:
    import glob
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    assert files, f'no metrics under {work_dir}'
    with open(files[-1]) as f:
        return {k: v for k, v in json.load(f).items() if '/' in k}  # metrics, not timings


def _data_with_an_empty_image(tools, root: str) -> str:
    """Two train images; the first has no segment at all (empty JSON list, all-VOID PNG) and another size."""
    data = tools.make_data(root, num_train=2, num_val=1)
    ann_path = osp.join(data, 'annotations', 'panoptic_train.json')
    pan = json.load(open(ann_path))
    image = sorted(pan['images'], key=lambda i: i['id'])[0]
    image.update(height=96, width=112)
    next(a for a in pan['annotations'] if a['image_id'] == image['id'])['segments_info'] = []
    json.dump(pan, open(ann_path, 'w'))
    img_path = osp.join(data, 'train', image['file_name'])
    Image.open(img_path).crop((0, 0, 112, 96)).save(img_path)
    Image.fromarray(np.zeros((96, 112, 3), np.uint8)).save(
        osp.join(data, 'annotations', 'panoptic_train', image['file_name'].replace('.jpg', '.png')))
    return data


@pytest.mark.slow
def test_slurm_launch_with_an_empty_image_on_one_rank(tmp_path, tools):
    """Through tools/slurm_train.sh (a stand-in srun on 127.0.0.1): one rank's image has no segments."""
    data = _data_with_an_empty_image(tools, str(tmp_path / 'data'))
    out = str(tmp_path / 'records')
    os.makedirs(out)
    config = tools.write_config(str(tmp_path / 'cfg.py'), data, max_iters=4, batch_size=1,
                                extra=HOOKS.format(out=out))
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'scontrol').write_text('#!/bin/sh\necho 127.0.0.1\n')
    (bin_dir / 'srun').write_text(  # start --ntasks copies of the command with srun's variables
        '#!/usr/bin/env bash\nn=1; while [[ $1 == -* ]]; do case $1 in --ntasks=*) n=${1#*=};; -p) shift;; esac; shift; done\n'
        'for ((i = 0; i < n; i++)); do SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$n SLURM_NODELIST=localhost '
        '"$@" & done\nfail=0; for job in $(jobs -p); do wait $job || fail=1; done; exit $fail\n')
    for name in ('srun', 'scontrol'):
        os.chmod(bin_dir / name, 0o755)
    run = tools.run(['tools/slurm_train.sh', 'cpu', 'm2f', config, str(tmp_path / 'work')], timeout=TIMEOUT,
                    env=dict(PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', GPUS='2', GPUS_PER_NODE='0',
                             TASKS_PER_NODE='2', MASTER_PORT=str(tools.free_port())))
    assert run.returncode == 0, run.stderr[-3000:]
    (w0, w1), (r0, r1) = _records(out, 2)
    steps = list(zip(r0['segments'], r1['segments']))
    assert any(a == [0] and b[0] > 0 for a, b in steps), steps   # rank 0 had an image without segments
    assert _same(w0, w1, local_bn_stats=True)
    assert all(bool(torch.isfinite(v).all()) for v in w0.values() if v.is_floating_point())


@pytest.mark.slow
def test_bad_launches_fail_fast_with_the_fix(tiny_data, tmp_path, tools):
    config = tools.write_config(str(tmp_path / 'cfg.py'), tiny_data, max_iters=2, batch_size=1)
    with socket.socket() as busy:                            # a port in use
        busy.bind(('', 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = tools.run(['tools/dist_train.sh', config, '2'], env=dict(PORT=str(port)), timeout=120)
    assert run.returncode == 1 and f'port {port} is in use' in run.stderr and f'PORT={port + 1}' in run.stderr

    run = tools.run(['tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                     'env_cfg.dist_cfg.backend=nccl'], env=dict(PORT=str(tools.free_port())), timeout=TIMEOUT)
    assert run.returncode != 0 and "m2f_mm: env_cfg.dist_cfg.backend='nccl' needs CUDA GPUs" in run.stderr

    small = tools.make_data(str(tmp_path / 'one'), num_train=1, num_val=1)
    config = tools.write_config(str(tmp_path / 'one.py'), small, max_iters=2, batch_size=1)
    run = tools.run(['tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path / 'w1')],
                    env=dict(PORT=str(tools.free_port())), timeout=TIMEOUT)
    assert run.returncode != 0 and 'the training set has 1 samples but 2 processes' in run.stderr


def _alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_a_stopped_rank_ends_the_job_naming_it(tiny_data, tmp_path, tools):
    """Rank 1 is SIGSTOPped after iteration 3: after the configured timeout rank 0 names it and exits, torchrun
    kills the stopped process, and nothing is left running (torch's own timeout would be 30 minutes)."""
    timeout = 10
    pid_dir = tmp_path / 'pids'
    pid_dir.mkdir()
    config = tools.write_config(str(tmp_path / 'cfg.py'), tiny_data, max_iters=8, batch_size=1, extra=(
        "custom_imports = dict(imports=['m2f_mm', '_test_hooks'], allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='StopAfterIterHook', at_iter=3, rank=1, pid_dir={str(pid_dir)!r})]"))
    pids = []
    try:
        run = tools.run(['tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                         f'env_cfg.dist_cfg.timeout={timeout}', 'train_dataloader.num_workers=1'],
                        env=dict(PORT=str(tools.free_port())), timeout=300)
        ended = time.time()
        pids = [int(p) for r in (0, 1) for p in (pid_dir / f'rank{r}.pids').read_text().split()]
        stopped_at = float((pid_dir / 'stopped_at').read_text())
        assert run.returncode != 0
        assert re.search(r'm2f_mm: rank 1 stopped answering after iteration 3 \(no heartbeat for \d+ s, host ',
                         run.stderr), run.stderr[-3000:]
        assert 'env_cfg.dist_cfg.timeout=10 s' in run.stderr and '--resume' in run.stderr
        # the timeout, a heartbeat interval, torchrun's 30 s between SIGTERM (pending in a stopped process) and
        # SIGKILL, and slack for a loaded machine
        assert ended - stopped_at < timeout + 1 + 30 + 15, ended - stopped_at
        assert len(pids) >= 4                                   # both ranks and their DataLoader workers
        deadline = time.time() + 10
        while any(_alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.2)
        assert not [p for p in pids if _alive(p)], 'processes of the job outlived it'
    finally:
        for p in pids or [int(p) for f in pid_dir.glob('rank*.pids') for p in f.read_text().split()]:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.slow
def test_launcher_without_torchrun_variables_names_the_script(tiny_data, tmp_path, tools):
    config = tools.write_config(str(tmp_path / 'cfg.py'), tiny_data)
    env = {k: '' for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')}
    run = tools.run(['tools/train.py', config, '--launcher', 'pytorch'], env=env, timeout=TIMEOUT)
    assert run.returncode == 1 and 'tools/dist_train.sh' in run.stderr, run.stderr[-2000:]
