"""Mixed precision: M2FAmpOptimWrapper (CPU bf16 autocast) trains the tiny model finitely; --amp wiring."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData, PixelData

import m2f_mm  # noqa: F401
from m2f_mm.datasets.synthetic import CLASS_INDEX, THING_IDS, generate_scene, image_rng
from m2f_mm.engine.optim.amp import M2FAmpOptimWrapper

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason='needs a CUDA GPU'))]


def _sample(index: int, size: int = 64):
    scene = generate_scene(image_rng(5, 'train', index), size, size)
    things = [s for s in scene.segments if s['category_id'] in THING_IDS and not s['iscrowd']]
    masks = np.stack([scene.pan_ids == s['id'] for s in things]).astype(np.uint8)
    sem = np.full(scene.pan_ids.shape, 255, np.int64)
    for s in scene.segments:
        sem[scene.pan_ids == s['id']] = CLASS_INDEX[s['category_id']]
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(labels=torch.tensor([CLASS_INDEX[s['category_id']] for s in things]),
                                       masks=BitmapMasks(masks, size, size), bboxes=torch.zeros(len(things), 4))
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
    return torch.from_numpy(scene.image).permute(2, 0, 1).contiguous(), sample


def _tiny_model(device: str):
    """configs/_base_/models/m2f_tiny.py (the tiny config's model), made cheaper: 64 px, fewer layers."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models', 'm2f_tiny.py'))
    head = cfg.model.panoptic_head
    head.num_queries, head.criterion.num_points = 12, 128
    head.num_things_classes, head.num_stuff_classes = 4, 3  # the synthetic classes
    cfg.model.panoptic_fusion_head.update(num_things_classes=4, num_stuff_classes=3)
    head.transformer_decoder.num_layers, head.pixel_decoder.encoder.num_layers = 3, 1
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device).train()


@pytest.mark.slow
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_tiny_model_trains_200_steps_finitely_under_autocast(device, dtype):
    """200 AdamW steps under autocast, from scratch at the tiny config's lr and grad clipping: every
    loss finite, the weights finite, the loss down. CPU runs bf16 only (the issue's CPU target)."""
    if device == 'cpu' and dtype == 'float16':
        pytest.skip('CPU float16 autocast is covered by the loss-scaler test below')
    torch.manual_seed(0)
    model = _tiny_model(device)
    wrapper = build_optim_wrapper(model, dict(
        type='M2FAmpOptimWrapper', dtype=dtype, optimizer=dict(type='AdamW', lr=4e-4, weight_decay=0.05),
        clip_grad=dict(max_norm=0.01, norm_type=2)))
    images, samples = zip(*[_sample(0), _sample(1)])
    data = model.data_preprocessor(dict(inputs=list(images), data_samples=list(samples)), training=True)
    with wrapper.optim_context(model):  # autocast really is on: the logits come out in the low dtype
        cls_sets, _ = model._forward(data['inputs'], data['data_samples'])
    assert cls_sets[-1].dtype == getattr(torch, dtype)
    totals = []
    for step in range(200):
        with wrapper.optim_context(model):
            losses = model.loss(data['inputs'], data['data_samples'])
        assert all(v.dtype == torch.float32 for v in losses.values())  # losses stay fp32
        total, _ = model.parse_losses(losses)
        assert torch.isfinite(total), f'non-finite loss at step {step}: {losses}'
        wrapper.update_params(total)
        totals.append(float(total.detach()))
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert np.mean(totals[-10:]) < 0.8 * np.mean(totals[:10])


def test_float16_scales_the_loss_and_unscales_before_clipping():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    wrapper = M2FAmpOptimWrapper(dtype='float16', init_scale=1024.0, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                 clip_grad=dict(max_norm=1e9))
    x = torch.randn(8, 4)
    with wrapper.optim_context(model):
        loss = model(x).float().pow(2).mean()
    wrapper.backward(loss)
    raw = model.weight.grad.clone()
    expected = torch.autograd.grad(model(x).pow(2).mean(), model.weight)[0]
    torch.testing.assert_close(raw / 1024.0, expected, rtol=1e-2, atol=1e-3)  # the loss was scaled by 1024
    before = model.weight.detach().clone()
    wrapper.step()
    torch.testing.assert_close(model.weight.detach(), before - 0.1 * expected, rtol=1e-2, atol=1e-3)
    state = wrapper.state_dict()
    assert state['loss_scaler']['scale'] == 1024.0
    with pytest.raises(ValueError, match='dtype must be one of'):
        M2FAmpOptimWrapper(dtype='float32', optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_train_py_amp_flags_pick_the_wrapper():
    spec = importlib.util.spec_from_file_location('m2f_train_tool', osp.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    config = osp.join(REPO, 'configs', 'm2f_r18-q24_1xb8-2k_synthetic-panoptic.py')
    base = dict(config=config, launcher='none', cfg_options=None, work_dir='/tmp/unused', auto_scale_lr=False,
                resume=None, partial_load=False)
    for amp_dtype, expected in ((None, 'bfloat16'), ('float16', 'float16')):
        cfg = train.build_cfg(type('Args', (), dict(base, amp=True, amp_dtype=amp_dtype))())
        if torch.cuda.is_available():
            assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        else:
            assert cfg.optim_wrapper.type == 'M2FAmpOptimWrapper' and cfg.optim_wrapper.dtype == expected
