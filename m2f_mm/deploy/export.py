"""Export an m2f_mm model (mmdet ``M2FDetector`` or mmseg ``EncoderDecoder`` + ``M2FSegHead``) to ONNX.

Shape legend: B batch (1 in the exported file), Q queries, C classes (index C = no-object),
H x W the normalised, padded network input, h x w = H/4 x W/4 the mask logits.

What is exported: image tensor ``images`` [B, 3, H, W] (normalised, padded) -> ``cls_logits``
[B, Q, C+1] and ``mask_logits`` [B, Q, h, w] of the final prediction set (backbone, pixel decoder,
masked-attention decoder). What stays in Python: resizing / normalising / padding the image (read
from the spec JSON written next to the .onnx file) and the fusion into panoptic / instance /
semantic results (:func:`m2f_mm.models.fusion.fuse`, the same code the PyTorch path runs), see
:mod:`m2f_mm.deploy.runtime`.

Exporter: ``torch.onnx.export(dynamo=False)`` (TorchScript tracing; 2 s for the tiny model where
``dynamo=True`` took 45 s, same graphs and numbers, and no onnxscript needed). The deformable attention
runs the pure-PyTorch ``grid_sample`` path during the export (:func:`m2f_mm.ops.pytorch_deform_attn`),
which lowers to ONNX GridSample (opset >= 16), with its level sizes taken from the traced feature maps,
so with ``dynamic=True`` height and width are free (multiples of 32) and the runtime pads each image to
the size divisor only, exactly as PyTorch does; with a fixed ``shape`` it pads (or shrinks, then pads)
every image to that size.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import M2FConfigError
from ..ops import pytorch_deform_attn
from ._deps import require

SPEC_VERSION = 1
DEFAULT_OPSET = 17
MIN_OPSET = 16  # GridSample
INPUT_NAME, OUTPUT_NAMES = 'images', ('cls_logits', 'mask_logits')


def spec_path(onnx_path: str) -> str:
    """Where the preprocessing / class spec of ``onnx_path`` lives: ``NAME.onnx`` -> ``NAME.m2f.json``."""
    return osp.splitext(onnx_path)[0] + '.m2f.json'


class LogitsNet(nn.Module):
    """The exported network: images [B, 3, H, W] -> (cls_logits [B, Q, C+1], mask_logits [B, Q, h, w])
    of the final prediction set, for an ``M2FDetector`` or an mmseg ``EncoderDecoder`` with an M2F head;
    with ``all_sets`` every prediction set, stacked: [S, B, Q, C+1] and [S, B, Q, h, w] (the last is the final)."""

    def __init__(self, model: nn.Module, all_sets: bool = False) -> None:
        super().__init__()
        self.model = model
        self.all_sets = all_sets
        if hasattr(model, 'panoptic_head'):
            self.head = model.panoptic_head
        elif hasattr(model, 'decode_head'):
            self.head = model.decode_head
        else:
            raise TypeError(f'{type(model).__name__} has neither panoptic_head (mmdet) nor decode_head (mmseg): '
                            'only m2f_mm models export')

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        cls_sets, mask_sets = self.head(self.model.extract_feat(images))
        if self.all_sets:
            return torch.stack(cls_sets), torch.stack(mask_sets)
        return cls_sets[-1], mask_sets[-1]


def _pipeline_resize(cfg) -> Optional[dict]:
    """The test pipeline's one resize step as {scale: [W, H], keep_ratio}, or None; other steps that
    change the image are refused (the runtime only replays load -> resize -> normalise -> pad)."""
    resize = None
    for step in cfg.test_dataloader.dataset.pipeline:
        name = str(step.get('type', '')).split('.')[-1]
        if name in ('LoadImageFromFile', 'LoadImageFromNDArray') or name.endswith('Annotations') \
                or name.startswith('Pack'):
            continue
        if name == 'Resize' and step.get('scale') is not None and not step.get('scale_factor'):
            if resize is not None:
                raise M2FConfigError('the test pipeline resizes twice; the ONNX runtime replays one Resize')
            scale = step['scale']
            scale = [scale, scale] if isinstance(scale, int) else list(scale)
            resize = dict(scale=[int(s) for s in scale], keep_ratio=bool(step.get('keep_ratio', False)))
            continue
        raise M2FConfigError(f'test pipeline step {name!r} is not replayed by the ONNX runtime (it replays '
                             'LoadImageFromFile, one Resize(scale=..., keep_ratio=...) and the data preprocessor); '
                             'export with a config whose test pipeline has only those')
    return resize


def preprocess_spec(model: nn.Module) -> dict:
    """What the runtime needs besides the network: preprocessing, classes and fusion settings."""
    cfg = model.cfg
    scope = cfg.get('default_scope', 'mmdet')
    pre = dict(cfg.model.data_preprocessor)
    meta = dict(model.dataset_meta)
    spec = dict(
        version=SPEC_VERSION, scope=scope, resize=_pipeline_resize(cfg),
        mean=[float(v) for v in pre.get('mean') or (0.0, 0.0, 0.0)],
        std=[float(v) for v in pre.get('std') or (1.0, 1.0, 1.0)],
        bgr_to_rgb=bool(pre.get('bgr_to_rgb', False) or pre.get('rgb_to_bgr', False)),
        classes=list(meta['classes']), palette=[list(map(int, c)) for c in meta.get('palette') or []])
    if scope == 'mmseg':
        from ..models.seg_head import predict_test_cfg
        head = model.decode_head
        chunk = predict_test_cfg(head, cfg.model.get('test_cfg')).query_chunk_size  # as predict() resolves it
        test_pad = dict(pre.get('test_cfg') or {})  # mmseg pads test images by its test_cfg only
        if test_pad.get('size') is not None:
            raise M2FConfigError('data_preprocessor.test_cfg.size (padding to a fixed size) is not replayed by the ONNX '
                                 'runtime; use test_cfg=dict(size_divisor=N) or export with --shape H W')
        spec.update(pad_value=float(pre.get('pad_val', 0)), size_divisor=int(test_pad.get('size_divisor') or 1),
                    num_things=0, align_corners=bool(head.align_corners),
                    test_cfg=dict(query_chunk_size=chunk))
    else:
        head = model.panoptic_fusion_head
        spec.update(pad_value=float(pre.get('pad_value', 0)), size_divisor=int(pre.get('pad_size_divisor') or 1),
                    num_things=int(head.num_things_classes), num_stuff=int(head.num_stuff_classes),
                    test_cfg=head.test_cfg.to_dict())
        for key in ('thing_classes', 'stuff_classes'):
            if key in meta:
                spec[key] = list(meta[key])
    return spec


def default_shape(spec: dict) -> Tuple[int, int]:
    """The input size a config implies: its test Resize's scale (long side x short side) padded to the
    size divisor, as (H, W) of a landscape image. Configs without a fixed Resize need ``shape``."""
    if spec['resize'] is None:
        raise M2FConfigError('the config\'s test pipeline has no Resize, so the input size is the image\'s own: '
                             'give it with --shape H W (the size of the images you will run, e.g. 512 512)')
    long_side, short_side = max(spec['resize']['scale']), min(spec['resize']['scale'])
    div = spec['size_divisor']
    return (-(-short_side // div) * div, -(-long_side // div) * div)


def check_shape(shape: Sequence[int], size_divisor: int) -> Tuple[int, int]:
    height, width = (int(v) for v in shape)
    if min(height, width) < 32 or height % size_divisor or width % size_divisor:
        raise M2FConfigError(f'--shape {height} {width}: height and width must be at least 32 and multiples of the '
                             f"config's size divisor {size_divisor} (the model's coarsest stride is 32)")
    return height, width


DYNAMIC_TRACE_SHAPE = (96, 128)  # any size works; small and not square, so no dimension is mistaken for another


def export_onnx(model: nn.Module, out: str, shape: Optional[Sequence[int]] = None, opset: int = DEFAULT_OPSET,
                dynamic: bool = False, all_sets: bool = False) -> Dict[str, object]:
    """Export ``model`` (built by :func:`m2f_mm.apis.init_model`, on CPU) to ``out`` (.onnx) and write the
    spec JSON beside it. ``dynamic``: any input height / width (multiples of 32); else the fixed size
    ``shape`` (H, W; default: :func:`default_shape`). ``all_sets``: every prediction set, stacked (the
    runtime fuses the last).

    Returns the spec (also saved to :func:`spec_path` of ``out``); ``input_shape`` is [H, W] or None (dynamic).
    """
    require('onnx')
    if opset < MIN_OPSET:
        raise M2FConfigError(f'--opset {opset}: the deformable attention needs ONNX GridSample, opset >= {MIN_OPSET}')
    spec = preprocess_spec(model)
    if dynamic and shape is not None:
        raise M2FConfigError('give either a fixed shape (--shape H W) or dynamic=True (--dynamic), not both')
    if dynamic:
        height, width = check_shape(DYNAMIC_TRACE_SHAPE, spec['size_divisor'])
    else:
        height, width = check_shape(shape if shape is not None else default_shape(spec), spec['size_divisor'])
    net = LogitsNet(model, all_sets).eval().cpu()
    images = torch.zeros(1, 3, height, width)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    import warnings
    with torch.no_grad(), pytorch_deform_attn(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the tracer's notes on shape-dependent Python branches (fixed size)
        first = 3 if all_sets else 2  # the mask logits' h, w axes
        axes = {INPUT_NAME: {2: 'height', 3: 'width'}, OUTPUT_NAMES[1]: {first: 'height_4', first + 1: 'width_4'}}
        torch.onnx.export(net, (images, ), out, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                          output_names=list(OUTPUT_NAMES), do_constant_folding=True,
                          dynamic_axes=axes if dynamic else None)
    spec.update(input_shape=None if dynamic else [height, width], opset=opset, all_sets=bool(all_sets), exporter='torch.onnx.export(dynamo=False)',
                torch=torch.__version__)
    with open(spec_path(out), 'w') as f:
        json.dump(spec, f, indent=1)
    return spec


def export_program(model: nn.Module, out: str, shape: Sequence[int]) -> 'torch.export.ExportedProgram':
    """``torch.export`` of the same network as :func:`export_onnx` (images [1, 3, H, W] at the fixed ``shape``
    -> final cls / mask logits), saved with ``torch.export.save`` to ``out`` (.pt2); ``torch.export.load``
    restores it without m2f_mm's model code (the deformable attention as aten ops: the grid_sample path).

    torch's own deployment stack (AOTInductor, ExecuTorch) starts from such a program. The size is fixed
    (dynamic height / width are not declared); the preprocessing spec is written beside it as for ONNX."""
    spec = preprocess_spec(model)
    height, width = check_shape(shape, spec['size_divisor'])
    net = LogitsNet(model).eval().cpu()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad(), pytorch_deform_attn():
        program = torch.export.export(net, (torch.zeros(1, 3, height, width), ), strict=False)
    torch.export.save(program, out)
    spec.update(input_shape=[height, width], exporter='torch.export.export(strict=False)', torch=torch.__version__)
    with open(spec_path(out), 'w') as f:
        json.dump(spec, f, indent=1)
    return program


def verify(model: nn.Module, onnx_path: str, image: Optional[np.ndarray] = None, tol: float = 1e-4,
           seed: int = 0) -> Dict[str, float]:
    """Run the ONNX file (onnxruntime) and eager PyTorch on one preprocessed image (BGR [H, W, 3] uint8;
    default: seeded noise at the input size, or, for a dynamic file, at a size other than the traced one)
    and compare the logits.

    Returns {'cls_max_diff', 'mask_max_diff', 'scale', 'relative', 'ok'}: ``relative`` is the largest
    |diff| over max(1, the largest |logit|); ``ok`` when it is at most ``tol``.
    """
    from .runtime import OnnxModel
    onnx_model = OnnxModel(onnx_path)
    if image is None:
        height, width = onnx_model.spec['input_shape'] or (DYNAMIC_TRACE_SHAPE[1], DYNAMIC_TRACE_SHAPE[0] + 32)
        image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    images, _ = onnx_model.preprocess(image)
    got = onnx_model.session.run(None, {INPUT_NAME: np.ascontiguousarray(images, dtype=np.float32)})
    with torch.no_grad():
        expected = LogitsNet(model, bool(onnx_model.spec.get('all_sets'))).eval()(torch.from_numpy(images))
    diffs = [float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected)]
    scale = max(1.0, max(float(e.abs().max()) for e in expected))
    relative = max(diffs) / scale
    return dict(cls_max_diff=diffs[0], mask_max_diff=diffs[1], scale=scale, relative=relative,
                ok=bool(relative <= tol))


__all__ = ['LogitsNet', 'export_onnx', 'verify', 'spec_path', 'preprocess_spec', 'default_shape', 'DEFAULT_OPSET']
