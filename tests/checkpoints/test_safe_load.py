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



@pytest.mark.parametrize('name, plain', [
    ('posix.system', False), ('os.system', False), ('nt.system', False), ('subprocess.Popen', False),
    ('commands.Popen', False), ('builtins.eval', False), ('builtins.exec', False), ('__builtin__.eval', False),
    ('shutil.rmtree', False), ('torch.nn.modules.linear.Linear', False), ('mypackage.records.Record', True),
    ('__main__.UserRecord', True), ('datetime.datetime', True), ('mypackage.tools.run', False)])
def test_only_what_may_be_a_data_class_is_called_one(name, plain):
    from m2f_mm.checkpoints.safe_load import is_plain_data_class
    assert is_plain_data_class(name) is plain


class _Popen:
    def __reduce__(self):
        import subprocess
        return (subprocess.Popen, (['true'], ))


class _Eval:
    def __reduce__(self):
        import builtins
        return (builtins.eval, ('1', ))


class _Exec:
    def __reduce__(self):
        import builtins
        return (builtins.exec, ('x = 1', ))


@pytest.mark.parametrize('payload', [_RunsCode(), _Popen(), _Eval(), _Exec()])
@pytest.mark.parametrize('suffix', ['.pkl', '.pth'])
def test_d2_converter_never_offers_trust_pickle_for_code(tmp_path, capsys, payload, suffix):
    import importlib.util
    path = str(tmp_path / f'model_final{suffix}')
    if suffix == '.pth':
        torch.save({'model': {}, 'x': payload}, path)
    else:
        with open(path, 'wb') as f:
            pickle.dump({'model': {}, 'x': payload}, f, protocol=2)  # how detectron2's .pkl files are written
    tool = os.path.join(os.path.dirname(__file__), '..', '..', 'tools', 'model_converters', 'd2_to_m2f.py')
    spec = importlib.util.spec_from_file_location('d2_to_m2f_tool', tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([path, str(tmp_path / 'out.pth')]) == 2
    err = capsys.readouterr().err
    assert 'refusing to unpickle' in err and 'is not a data class' in err
    assert '--trust-pickle' not in err and 'add_safe_globals' not in err


def test_d2_converter_offers_trust_pickle_for_a_data_class(tmp_path):
    from m2f_mm.checkpoints import CheckpointFormatError, load_d2_checkpoint
    path = str(tmp_path / 'mine.pth')
    torch.save({'model': {}, 'record': UserRecord('kept')}, path)
    with pytest.raises(CheckpointFormatError, match=r'UserRecord class, rerun with --trust-pickle'):
        load_d2_checkpoint(path)
    truncated = tmp_path / 'cut.pth'
    truncated.write_bytes(open(path, 'rb').read()[:100])
    with pytest.raises(CheckpointFormatError, match='truncated') as info:
        load_d2_checkpoint(str(truncated))
    assert '--trust-pickle' not in str(info.value)
