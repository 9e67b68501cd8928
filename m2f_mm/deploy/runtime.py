"""Run an exported m2f_mm model with onnxruntime: no config, no checkpoint, the same results as PyTorch.

Shape legend: H0 x W0 the original image, h' x w' after the test pipeline's resize, H x W the
network input (the exported ``input_shape``, or h' x w' padded to the size divisor for a dynamic file),
h x w = H/4 x W/4, Q queries, C classes.

    from m2f_mm.deploy import OnnxModel, inference_onnx
    model = OnnxModel('work_dirs/model.onnx')               # reads work_dirs/model.m2f.json too
    sample = inference_onnx(model, 'image.jpg')               # DetDataSample (mmdet) / SegDataSample (mmseg)

Steps per image, each the PyTorch path's own: decode as ``LoadImageFromFile`` (BGR), the test
pipeline's ``Resize`` (mmcv ``imrescale`` / ``imresize``, bilinear), the data preprocessor's
channel order, ``(x - mean) / std`` and bottom / right padding with its pad value, then the ONNX
network, then :class:`~m2f_mm.models.fusion.M2FFusionHead` (mmdet: panoptic / instance / semantic) or
the semantic :func:`~m2f_mm.models.fusion.fuse` + crop + resize of mmseg's ``EncoderDecoder``. A dynamic
file (``--dynamic``) gets each image padded to the size divisor, as in PyTorch, so its results equal
PyTorch's for every image. A fixed-size file gets every image padded to its H x W (PyTorch pads to the
divisor only), so results equal PyTorch's when the image, resized and padded to the divisor, is H x W;
an image larger than H x W after resizing is shrunk to fit first (aspect ratio kept; ``scale_factor``
says so).
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import M2FConfigError
from ._deps import require
from .export import INPUT_NAME, SPEC_VERSION, spec_path

ImageType = Union[str, np.ndarray]


class OnnxModel:
    """An exported model: the onnxruntime session and the spec written at export.

    Args:
        onnx_path: the ``.onnx`` file; its spec ``NAME.m2f.json`` must sit beside it.
        test_cfg: overrides of the fusion settings stored at export (mmdet: ``panoptic_on``,
            ``object_mask_thr``, ...; mmseg: ``query_chunk_size``).
        threads: onnxruntime intra-op threads (0: onnxruntime's default).
    """

    def __init__(self, onnx_path: str, test_cfg: Optional[dict] = None, threads: int = 0) -> None:
        ort = require('onnxruntime')
        if not osp.isfile(onnx_path):
            raise FileNotFoundError(f'ONNX file {onnx_path!r} does not exist')
        spec_file = spec_path(onnx_path)
        if not osp.isfile(spec_file):
            raise FileNotFoundError(f'{spec_file!r} is missing: it is written next to the .onnx file by '
                                    'tools/deployment/pytorch2onnx.py and holds the preprocessing and classes')
        with open(spec_file) as f:
            self.spec = json.load(f)
        if self.spec.get('version') != SPEC_VERSION:
            raise M2FConfigError(f'{spec_file}: spec version {self.spec.get("version")}, this m2f_mm reads '
                                 f'{SPEC_VERSION}; export the model again')
        self.spec['test_cfg'] = dict(self.spec.get('test_cfg') or {}, **(test_cfg or {}))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(onnx_path, options, providers=['CPUExecutionProvider'])
        self.onnx_path = onnx_path

    @property
    def scope(self) -> str:
        """'mmdet' (panoptic / instance / semantic) or 'mmseg' (semantic)."""
        return self.spec['scope']

    @property
    def dataset_meta(self) -> dict:
        """classes, palette (and thing_classes / stuff_classes for panoptic models), as a model's."""
        meta = dict(classes=tuple(self.spec['classes']), palette=[tuple(c) for c in self.spec['palette']])
        for key in ('thing_classes', 'stuff_classes'):
            if key in self.spec:
                meta[key] = tuple(self.spec[key])
        return meta

    def preprocess(self, image: np.ndarray) -> Tuple[np.ndarray, dict]:
        """BGR uint8 [H0, W0, 3] -> (images float32 [1, 3, H, W], metainfo as the PyTorch path's)."""
        import mmcv
        spec = self.spec
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'image must be [H, W, 3] (BGR), got {image.shape}')
        ori_shape = image.shape[:2]
        img = image
        if spec['resize'] is not None:
            scale = tuple(spec['resize']['scale'])
            if spec['resize']['keep_ratio']:
                img = mmcv.imrescale(img, scale, interpolation='bilinear', backend='cv2')
            else:
                img = mmcv.imresize(img, scale, interpolation='bilinear', backend='cv2')
        if spec['input_shape'] is None:  # dynamic: the data preprocessor's padding to the divisor
            div = spec['size_divisor']
            height, width = (-(-max(v, 32) // div) * div for v in img.shape[:2])
        else:
            height, width = spec['input_shape']
        if img.shape[0] > height or img.shape[1] > width:  # fit into the exported size
            factor = min(height / img.shape[0], width / img.shape[1])
            size = (min(width, max(1, int(img.shape[1] * factor + 0.5))),
                    min(height, max(1, int(img.shape[0] * factor + 0.5))))
            img = mmcv.imresize(img, size, interpolation='bilinear', backend='cv2')
        img_shape = img.shape[:2]
        x = img.astype(np.float32)
        if spec['bgr_to_rgb']:
            x = x[..., ::-1]
        x = (x - np.asarray(spec['mean'], np.float32)) / np.asarray(spec['std'], np.float32)
        images = np.full((1, 3, height, width), spec['pad_value'], dtype=np.float32)
        images[0, :, :img_shape[0], :img_shape[1]] = x.transpose(2, 0, 1)
        meta = dict(ori_shape=ori_shape, img_shape=img_shape, pad_shape=(height, width),
                    batch_input_shape=(height, width),
                    scale_factor=(img_shape[1] / ori_shape[1], img_shape[0] / ori_shape[0]))
        return images, meta

    def logits(self, images: np.ndarray) -> List[np.ndarray]:
        """images [1, 3, H, W] -> [cls_logits [1, Q, C+1], mask_logits [1, Q, h, w]] of the final set
        (onnxruntime; a file exported with every set gives its last)."""
        fixed = self.spec['input_shape']
        if images.ndim != 4 or images.shape[:2] != (1, 3) or (fixed and list(images.shape[2:]) != fixed):
            raise ValueError(f'images must be [1, 3, {", ".join(map(str, fixed or ("H", "W")))}], got '
                             f'{list(images.shape)}; use OnnxModel.preprocess')
        outputs = self.session.run(None, {INPUT_NAME: np.ascontiguousarray(images, dtype=np.float32)})
        return [o[-1] for o in outputs] if self.spec.get('all_sets') else outputs

    def predict(self, image: np.ndarray, metainfo: Optional[dict] = None):
        """One BGR image -> DetDataSample (mmdet) or SegDataSample (mmseg), results at the original size."""
        images, meta = self.preprocess(image)
        meta.update(metainfo or {})
        cls_logits, mask_logits = (torch.from_numpy(a) for a in self.logits(images))
        if self.scope == 'mmseg':
            return self._semantic_sample(cls_logits[0], mask_logits[0], meta)
        return self._det_sample(cls_logits, mask_logits, meta)

    def _det_sample(self, cls_logits: torch.Tensor, mask_logits: torch.Tensor, meta: dict):
        from mmdet.structures import DetDataSample

        from ..models.detector import M2FDetector
        from ..models.fusion import M2FFusionHead
        fusion = M2FFusionHead(num_things_classes=self.spec['num_things'], num_stuff_classes=self.spec['num_stuff'],
                               test_cfg=self.spec['test_cfg'])
        results = fusion.predict(cls_logits, mask_logits, [meta], rescale=True)
        # the detector's own copy into pred_panoptic_seg / pred_instances / pred_sem_seg (it reads no state)
        return M2FDetector.add_pred_to_datasample(None, [DetDataSample(metainfo=meta)], results)[0]

    def _semantic_sample(self, cls_logits: torch.Tensor, mask_logits: torch.Tensor, meta: dict):
        """As M2FSegHead.predict + mmseg's EncoderDecoder.postprocess_result (crop padding, resize, argmax)."""
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample

        from ..models.fusion import fuse
        from ..models.test_config import SEMANTIC_HEAD_KEYS, parse
        chunk = parse(self.spec['test_cfg'], where='test_cfg', reader='the semantic ONNX runtime',
                      keys=SEMANTIC_HEAD_KEYS).query_chunk_size
        scores = fuse(cls_logits, mask_logits, 0, ('semantic', ), pad_hw=tuple(meta['pad_shape']),
                      chunk=chunk)['semantic']
        img_h, img_w = meta['img_shape']
        scores = F.interpolate(scores[None, :, :img_h, :img_w], size=tuple(meta['ori_shape']), mode='bilinear',
                               align_corners=self.spec['align_corners'])[0]
        sample = SegDataSample(metainfo=meta)
        sample.seg_logits = PixelData(data=scores)
        sample.pred_sem_seg = PixelData(data=scores.argmax(dim=0, keepdim=True))
        return sample


def read_image(path: str) -> np.ndarray:
    """BGR uint8 [H, W, 3], decoded as the test pipeline's ``LoadImageFromFile`` decodes it."""
    import mmcv
    if not osp.isfile(path):
        raise FileNotFoundError(f'image file {path!r} does not exist')
    with open(path, 'rb') as f:
        return mmcv.imfrombytes(f.read(), flag='color', backend='cv2')


def inference_onnx(model: OnnxModel, images: Union[ImageType, Sequence[ImageType]]):
    """:func:`m2f_mm.apis.inference_model` for an :class:`OnnxModel`: an image (path or BGR array) or a
    list -> one data sample per image (a single one for a single image), at the original size."""
    single = isinstance(images, (str, np.ndarray))
    results = []
    for index, image in enumerate([images] if single else list(images)):
        meta: Dict[str, object] = dict(img_id=index)
        if isinstance(image, str):
            meta['img_path'] = image
            image = read_image(image)
        results.append(model.predict(image, meta))
    return results[0] if single else results


__all__ = ['OnnxModel', 'inference_onnx', 'read_image']
