"""A non-finite loss term or gradient norm stops training before the optimizer steps, or is skipped."""
import re
import types

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

from m2f_mm.errors import M2FNonFiniteError
from m2f_mm.engine.hooks.nonfinite import M2FNonFiniteGuardHook, non_finite_terms, prediction_sets


def test_prediction_sets_and_terms():
    assert prediction_sets(['d3.loss_mask', 'loss_cls', 'decode.d0.loss_dice', 'd3.loss_cls']) == ['d3', 'final', 'd0']
    losses = {'loss_cls': torch.tensor(1.0), 'd1.loss_mask': torch.tensor(float('inf')),
              'acc': torch.tensor(float('nan')), 'loss_dice': torch.tensor([1.0, float('nan')])}
    assert set(non_finite_terms(losses)) == {'d1.loss_mask', 'loss_dice'}  # 'acc' is not a loss term


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def parse_losses(self, losses):
        return sum(losses.values()), losses


def _runner(mode):
    model = _Model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0))
    runner = types.SimpleNamespace(model=model, optim_wrapper=wrapper, iter=6,
                                   message_hub=MessageHub.get_instance('m2f_nonfinite_test'))
    hook = M2FNonFiniteGuardHook(mode)
    hook.before_train(runner)
    sample = types.SimpleNamespace(metainfo=dict(img_path='data/a.jpg'), gt_instances=InstanceData())
    hook.before_train_iter(runner, 0, dict(data_samples=[sample]))
    return runner, hook


def _step(runner, loss_fn):
    loss, _ = runner.model.parse_losses(dict(loss_a=loss_fn(runner.model.w)))
    runner.optim_wrapper.update_params(loss)


def test_raise_on_a_non_finite_loss_names_iteration_term_and_image():
    runner, _ = _runner('raise')
    with pytest.raises(M2FNonFiniteError, match=r'iteration 7: loss_a=nan .*data/a\.jpg.*did not step'):
        _step(runner, lambda w: w.sum() * float('nan'))
    assert torch.equal(runner.model.w.detach(), torch.zeros(3))


def test_raise_on_a_non_finite_gradient_before_the_step():
    runner, _ = _runner('raise')
    with pytest.raises(M2FNonFiniteError, match=r'gradient norm \((inf|nan)\) at iteration 7'):
        _step(runner, lambda w: w.abs().sqrt().sum())  # loss 0, gradient inf at w = 0
    assert torch.equal(runner.model.w.detach(), torch.zeros(3))


def test_skip_mode_skips_counts_and_then_trains_on():
    runner, hook = _runner('skip')
    _step(runner, lambda w: w.abs().sqrt().sum())
    _step(runner, lambda w: w.sum() * float('nan'))
    assert hook.num_skipped == 2 and torch.equal(runner.model.w.detach(), torch.zeros(3))
    assert runner.model.w.grad is None or not runner.model.w.grad.any()
    _step(runner, lambda w: w.sum())  # a good step updates as usual
    assert hook.num_skipped == 2 and torch.equal(runner.model.w.detach(), -torch.ones(3))
    hook.after_train_iter(runner, 0)
    assert runner.message_hub.get_scalar('train/nonfinite_skipped').current() == 2


@pytest.mark.slow
def test_huge_lr_stops_the_real_tool_then_skip_mode_trains_to_the_end(tiny_data, tmp_path, tools):
    config = tools.write_config(str(tmp_path / 'cfg.py'), tiny_data, max_iters=4)
    opts = ['--cfg-options', 'optim_wrapper.optimizer.lr=1e6']
    out = tools.run(['tools/train.py', config, '--work-dir', str(tmp_path / 'raise')] + opts)
    assert out.returncode == 1, out.stderr[-2000:]
    message = out.stderr.strip().splitlines()[-1]
    # which terms overflow first depends on the data (the synthetic scenes): any, named with its value
    assert re.match(r'm2f_mm: non-finite loss at iteration 2: loss_(cls|mask|dice)=(nan|inf)', message), message
    assert 'prediction sets: final, d0' in message and '/train/' in message and 'lower optim_wrapper' in message
    out = tools.run(['tools/train.py', config, '--work-dir', str(tmp_path / 'skip')] + opts + ['nonfinite_steps=skip'])
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'nonfinite_skipped: 3' in out.stdout and (tmp_path / 'skip' / 'iter_4.pth').exists()
