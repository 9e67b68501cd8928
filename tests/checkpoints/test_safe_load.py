"""mmengine checkpoints load under torch's safe-by-default loading; arbitrary pickles still do not.
``import m2f_mm`` changes none of mmengine's loaders; M2FRunner opts in."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

from m2f_mm.checkpoints.safe_load import install_checkpoint_loader, load_local_checkpoint


def _mmengine_like_checkpoint(path):
    hub = MessageHub.get_instance('m2f_mm_test_hub')
    for i in range(3):
        hub.update_scalar('train/loss', float(i))
    hub.update_info('eta', np.float64(12.5))
    torch.save(dict(state_dict={'w': torch.arange(4.)}, message_hub=hub.state_dict(),
                    meta=dict(seed=0, dataset_meta=dict(classes=('a', 'b')))), path)


def test_plain_torch_load_refuses_mmengine_checkpoint_but_ours_loads_it(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _mmengine_like_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch >= 2.6 default: what mmengine 0.10 does, and why it fails
    from mmengine.runner.checkpoint import CheckpointLoader
    mmengine_local = CheckpointLoader._schemes['']
    install_checkpoint_loader()  # what M2FRunner does
    try:
        checkpoint = _load_checkpoint(path, map_location='cpu')  # through mmengine, as the runner does
    finally:
        CheckpointLoader._schemes[''] = mmengine_local
    assert torch.equal(checkpoint['state_dict']['w'], torch.arange(4.))
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert buffer.mean() == pytest.approx(1.0) and buffer.current() == 2.0
    assert checkpoint['message_hub']['runtime_info']['eta'] == 12.5


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null', ))


class _WritesFile:
    def __reduce__(self):
        return (getattr, (np.zeros(2), 'tofile'))


@pytest.mark.parametrize('payload, name', [(_RunsCode(), 'system'), (_WritesFile(), 'tofile')])
def test_arbitrary_code_is_still_refused(tmp_path, payload, name):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'evil': payload}, path)
    with pytest.raises(pickle.UnpicklingError, match=name) as info:
        load_local_checkpoint(path)
    message = str(info.value)
    # the refusal never suggests allow-listing what it refused
    assert f'add_safe_globals([{name}' not in message and 'add_safe_globals([system' not in message


class UserRecord:
    """A plain data class a user pickles into their own checkpoint."""

    def __init__(self, note):
        self.note = note


def test_user_allow_listed_class_loads(tmp_path):
    path = str(tmp_path / 'mine.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}, 'record': UserRecord('kept')}, path)
    with pytest.raises(pickle.UnpicklingError, match='UserRecord'):
        load_local_checkpoint(path)
    before = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([UserRecord])
    try:
        assert load_local_checkpoint(path)['record'].note == 'kept'
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)

