"""What the runner stores besides tensors survives torch.load(weights_only=True) and comes back exactly."""
import io
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from m2f_mm.checkpoints.safe_types import TYPE_KEY, decode_array, from_weights_only, make_weights_only, \
    to_weights_only


def _through_torch_default(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer)  # torch's default: weights_only=True


@pytest.mark.parametrize('value', [
    np.arange(624, dtype=np.uint32), np.array([1.5, -2.0], dtype='>f4'), np.zeros((2, 3), np.float16),
    np.array([True, False]), np.array(['2020-01-01'], dtype='datetime64[D]'), np.float64(12.5), np.int64(-3),
    np.arange(6, dtype=np.int16).reshape(2, 3)[:, ::2]])
def test_numpy_values_round_trip_exactly(value):
    back = from_weights_only(_through_torch_default(to_weights_only(value)))
    assert type(back) is type(value) and back.dtype == value.dtype and np.array_equal(back, value)
    assert np.shape(back) == np.shape(value)


def test_message_hub_and_rng_state_round_trip():
    hub = MessageHub.get_instance('m2f_safe_types_test')
    for value in (3.0, 1.0, 2.0):
        hub.update_scalar('train/loss', value)
    hub.update_scalar('train/count', 4, count=2)
    hub.update_info('eta', np.float64(7.25))
    rng = np.random.RandomState(3).get_state()
    checkpoint = dict(state_dict=OrderedDict(w=torch.arange(3.)), message_hub=hub.state_dict(),
                      meta=dict(m2f_rng_states=[dict(numpy=rng, torch=torch.get_rng_state())], iter=3))
    checkpoint['state_dict']._metadata = {'': {'version': 2}}
    state_dict = checkpoint['state_dict']
    make_weights_only(checkpoint)
    assert checkpoint['state_dict'] is state_dict  # nothing to change: the very object, _metadata kept
    back = from_weights_only(_through_torch_default(checkpoint))

    restored = MessageHub.get_instance('m2f_safe_types_restored')
    restored.load_state_dict(back['message_hub'])  # what Runner.resume does
    loss = restored.get_scalar('train/loss')
    assert isinstance(loss, HistoryBuffer) and loss.mean() == 2.0 and loss.current() == 2.0 and loss.min() == 1.0
    assert np.array_equal(restored.get_scalar('train/count').data[1], [2])
    assert type(restored.get_info('eta')) is np.float64 and restored.get_info('eta') == 7.25
    saved = back['meta']['m2f_rng_states'][0]['numpy']
    assert isinstance(saved, tuple) and saved[0] == 'MT19937' and saved[1].dtype == np.uint32
    generator = np.random.RandomState()
    generator.set_state(saved)
    assert generator.randint(1 << 30) == np.random.RandomState(3).randint(1 << 30)
    assert back['state_dict']._metadata == {'': {'version': 2}}


def test_checkpoints_written_before_still_load_and_object_arrays_are_refused():
    old_style = dict(message_hub=dict(log_scalars={'loss': HistoryBuffer([1.0], [1])}))
    assert from_weights_only(old_style) is old_style  # an unconverted checkpoint passes through untouched
    objects = np.array([object()], dtype=object)
    assert to_weights_only(objects) is objects  # not convertible: left for the restricted loader to judge
    with pytest.raises(ValueError, match='dtype'):
        decode_array({TYPE_KEY: 'numpy.ndarray', 'dtype': '|O', 'shape': [1], 'scalar': False,
                      'data': torch.zeros(8, dtype=torch.uint8)})
