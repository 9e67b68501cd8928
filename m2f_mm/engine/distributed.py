"""Process-group set-up for torchrun, slurm and mpi, on CUDA or on CPU.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally, and its default DDP
wrapper passes ``device_ids=[local_rank]``; both fail on a machine without CUDA. Here the
backend is chosen from what the machine has (``nccl`` with CUDA, ``gloo`` without) unless the
config names one, no CUDA call is made without CUDA, and a backend that cannot work is refused
with the fix instead of failing inside torch.

A rank that stops answering for ``env_cfg.dist_cfg.timeout`` seconds (default
:data:`DEFAULT_TIMEOUT_S`, not torch's 30 minutes) ends the job naming it (``engine/watchdog.py``);
torch's collective operations time out :data:`WATCHDOG_LEAD_S` later, so that the heartbeat
watchdog names the rank before torch's own watchdog aborts the process (nccl).
"""
import datetime
import os
import subprocess
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.distributed as torch_dist

from ..errors import M2FLaunchError

AUTO = 'auto'
# Long enough for rank 0 alone to compute COCO metrics or write a large checkpoint while the others wait.
DEFAULT_TIMEOUT_S = 600.0
WATCHDOG_LEAD_S = 60.0


def resolve_backend(requested: Optional[str], cuda_available: bool) -> str:
    """``'auto'`` / ``None`` -> ``'nccl'`` with CUDA else ``'gloo'``; an explicit choice is kept if it can work."""
    if requested in (None, AUTO):
        return 'nccl' if cuda_available else 'gloo'
    if requested == 'nccl' and not cuda_available:
        raise M2FLaunchError(
            "env_cfg.dist_cfg.backend='nccl' needs CUDA GPUs, and this machine has none. Use "
            "--cfg-options env_cfg.dist_cfg.backend=gloo (or 'auto': nccl with CUDA, gloo without).")
    return requested


def slurm_rank_env(env: Mapping[str, str], num_gpus: int,
                   resolve_host=None) -> Dict[str, str]:
    """torchrun-style variables (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) from srun's.

    Args:
        env: the process environment (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_NODELIST``,
            optional ``SLURM_LOCALID``, ``MASTER_ADDR``, ``MASTER_PORT``).
        num_gpus: GPUs on this node, used only when ``SLURM_LOCALID`` is absent.
        resolve_host: node list -> first host name (default: ``scontrol show hostname``).
    """
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST') if not env.get(k)]
    if missing:
        raise M2FLaunchError(f'--launcher slurm needs the variables srun sets ({", ".join(missing)} missing): '
                             'start it with tools/slurm_train.sh, or use --launcher pytorch with torchrun.')
    rank = int(env['SLURM_PROCID'])
    local_rank = int(env['SLURM_LOCALID']) if 'SLURM_LOCALID' in env else rank % max(num_gpus, 1)
    addr = env.get('MASTER_ADDR')
    if not addr:
        resolve_host = resolve_host or (lambda nodes: subprocess.getoutput(
            f'scontrol show hostname {nodes} | head -n1').strip())
        addr = resolve_host(env['SLURM_NODELIST'])
    return dict(RANK=str(rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(int(env['SLURM_NTASKS'])),
                MASTER_ADDR=addr, MASTER_PORT=env.get('MASTER_PORT', '29500'))


def _pytorch_rank_env(env: Mapping[str, str]) -> Tuple[int, int, int]:
    missing = [k for k in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if not env.get(k)]
    if missing:
        raise M2FLaunchError(f'--launcher pytorch needs the variables torchrun sets ({", ".join(missing)} '
                             'missing): start it with tools/dist_train.sh CONFIG NUM_PROCESSES (torchrun).')
    return int(env['RANK']), int(env['LOCAL_RANK']), int(env['WORLD_SIZE'])


def collective_timeout(dist_cfg: Optional[Mapping]) -> float:
    """Seconds from ``env_cfg.dist_cfg.timeout`` (default :data:`DEFAULT_TIMEOUT_S`), checked."""
    value = (dist_cfg or {}).get('timeout')
    if value is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float('nan')
    if not seconds > 0 or seconds == float('inf'):
        raise M2FLaunchError(f'env_cfg.dist_cfg.timeout must be a positive number of seconds, got {value!r}: '
                             f'e.g. --cfg-options env_cfg.dist_cfg.timeout={DEFAULT_TIMEOUT_S:g}')
    return seconds


def init_distributed(launcher: str, backend: Optional[str] = AUTO, timeout: Optional[float] = None,
                     port: Optional[int] = None, init_backend: str = 'torch', **kwargs) -> str:
    """Initialise the default process group for ``launcher`` (``pytorch``, ``slurm`` or ``mpi``).

    Takes ``env_cfg.dist_cfg`` as keywords (``backend``, ``timeout`` in seconds, default
    :data:`DEFAULT_TIMEOUT_S`: collectives time out :data:`WATCHDOG_LEAD_S` later; ``port`` for
    slurm); other keywords go to ``torch.distributed.init_process_group``. Returns the backend.
    """
    if init_backend != 'torch':
        raise M2FLaunchError(f"env_cfg.dist_cfg.init_backend={init_backend!r} is not supported by M2FRunner; "
                             "remove it (torch.distributed is used)")
    cuda = torch.cuda.is_available()
    backend = resolve_backend(backend, cuda)
    kwargs['timeout'] = datetime.timedelta(seconds=collective_timeout(dict(timeout=timeout)) + WATCHDOG_LEAD_S)
    if launcher == 'mpi':
        from mmengine.dist import init_dist
        init_dist('mpi', backend=backend, **kwargs)
        return backend
    if launcher == 'slurm':
        env = slurm_rank_env(os.environ, torch.cuda.device_count() if cuda else 1)
        if port is not None:
            env['MASTER_PORT'] = str(port)
        os.environ.update(env)
    elif launcher != 'pytorch':
        raise M2FLaunchError(f'unknown launcher {launcher!r}: use none, pytorch, slurm or mpi')
    rank, local_rank, world_size = _pytorch_rank_env(os.environ)
    if backend == 'nccl':
        if local_rank >= torch.cuda.device_count():
            raise M2FLaunchError(f'local rank {local_rank} but only {torch.cuda.device_count()} CUDA devices on '
                                 'this node: start at most that many processes per node')
        torch.cuda.set_device(local_rank)
    torch_dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **kwargs)
    return backend


def ddp_wrapper_cfg(model_wrapper_cfg: Optional[dict], find_unused_parameters: bool,
                    on_cuda: bool) -> Optional[dict]:
    """The DDP wrapper config mmengine's runner should get.

    On CUDA nothing changes. On CPU, ``device_ids`` must be ``None`` (DDP refuses a device list
    for a CPU module), so mmengine's default wrapper is spelled out with that one difference.
    """
    if on_cuda:
        return model_wrapper_cfg
    cfg = dict(model_wrapper_cfg) if model_wrapper_cfg is not None else dict(
        type='MMDistributedDataParallel', broadcast_buffers=False, find_unused_parameters=find_unused_parameters)
    cfg.setdefault('type', 'MMDistributedDataParallel')
    cfg.setdefault('device_ids', None)
    return cfg


def rank_seed(seed: int, rank: int) -> int:
    """A seed for ``rank`` derived from the run's ``seed``: distinct per rank, the same in every run."""
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0])


def check_world_fits(num_samples: int, world_size: int, what: str = 'training set') -> None:
    """Refuse a world size larger than the dataset: some ranks would see only padding copies."""
    if world_size > 1 and num_samples < world_size:
        raise M2FLaunchError(
            f'the {what} has {num_samples} samples but {world_size} processes were started: every process '
            f'needs at least one sample of its own. Start at most {max(num_samples, 1)} processes '
            '(e.g. bash tools/dist_train.sh CONFIG N) or use a larger dataset.')
