"""MaskFormer's per-pixel classification baselines as mmseg decode heads (semantic segmentation).

Shape legend:
    B       batch
    C_i     backbone channels of input level i (strides 4, 8, 16, 32)
    E       out_channels, the per-pixel embedding width
    C       classes (no no-object class: every pixel gets one of C)
    H, W    padded input (the GT's size); h, w = H/4, W/4

The MaskFormer paper's baselines (Cheng et al., NeurIPS 2021, Table 2 / Sec. 4.2, its
``PerPixelBaselineHead`` / ``PerPixelBaselinePlusHead``), which differ from MaskFormer only in
per-pixel vs mask classification:

- :class:`M2FPerPixelHead`: MaskFormer's pixel decoder (FPN, no encoder) then a 1x1 conv classifier
  on the per-pixel embedding -> per-class logits [B, C, h, w].
- :class:`M2FPerPixelPlusHead`: :class:`~m2f_mm.models.maskformer_head.M2FMaskFormerSegHead` with
  Q = C queries, query c standing for class c and no class head: the per-class logits are
  ``mask_embed(query_c) . per-pixel embedding``, one set per decoder layer.

Loss (both): per-pixel cross-entropy over the C classes at the GT resolution (logits upsampled
bilinearly), mean over the pixels that are not ``ignore_index``, times ``loss_weight``; with
``deep_supervision`` (the original's setting for the Plus head) every decoder layer's logits get
the same loss (``d{i}.loss_ce``, the last layer ``loss_ce``). Inference: the last set's logits
resized as mmseg's ``BaseDecodeHead.predict_by_feat`` does.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import Conv2d
from mmengine.model import BaseModule, kaiming_init
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.criterion import set_name
from m2f_mm.models.head import build_pixel_decoder, refuse_training_keys
from m2f_mm.models.maskformer_head import M2FMaskFormerSegHead
from m2f_mm.models.mmdet_compat import require_class_counts
from m2f_mm.models.seg_head import predict_test_cfg, set_mmseg_attributes
from m2f_mm.registry import register_seg_model

__all__ = ['per_pixel_ce_loss', 'M2FPerPixelHead', 'M2FPerPixelPlusHead']


def per_pixel_ce_loss(logits: Tensor, target: Tensor, ignore_index: int = 255,
                      align_corners: bool = False) -> Tensor:
    """Cross-entropy of every non-ignored pixel, at the target's resolution.

    Args:
        logits: ``Tensor[B, C, h, w]`` per-class logits (upsampled bilinearly to ``H x W``, in fp32).
        target: ``LongTensor[B, H, W]`` class ids in ``[0, C)`` or ``ignore_index``.
        ignore_index: label of pixels without a loss.
        align_corners: of the upsampling.

    Returns:
        fp32 scalar: the mean over non-ignored pixels; 0 (with a graph) when every pixel is ignored.
    """
    if logits.dim() != 4 or target.dim() != 3 or logits.shape[0] != target.shape[0]:
        raise ValueError(f'logits {tuple(logits.shape)} and target {tuple(target.shape)} must be [B, C, h, w] and '
                         f'[B, H, W] with the same B')
    logits = logits.float()
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode='bilinear', align_corners=align_corners)
    if not bool((target != ignore_index).any()):  # F.cross_entropy's mean over no pixel is NaN
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target.long(), ignore_index=ignore_index)


def _output_size(batch_img_metas: List[dict]) -> Tuple[int, int]:
    """Where mmseg's ``BaseDecodeHead.predict_by_feat`` resizes to: the crop (slide inference, whose
    ``img_shape`` is a ``torch.Size``), else ``pad_shape``, else ``img_shape``."""
    meta = batch_img_metas[0]
    if isinstance(meta['img_shape'], torch.Size) or 'pad_shape' not in meta:
        return tuple(int(v) for v in meta['img_shape'][:2])
    return tuple(int(v) for v in meta['pad_shape'][:2])


class _PerPixelSegLoss:
    """``loss`` / ``predict`` of an mmseg decode head whose ``forward(feats, batch_data_samples=None)``
    returns per-class logit sets, each ``Tensor[B, C, h, w]``, the last being the prediction.

    Needs ``num_classes``, ``ignore_index``, ``loss_weight``, ``deep_supervision``, ``align_corners``.
    """

    test_keys = ()  # per-pixel logits: no test_cfg option applies (mmseg's own keys pass to mmseg)

    def loss(self, x: Sequence[Tensor], batch_data_samples: List, train_cfg: Dict = None) -> Dict[str, Tensor]:
        """x: backbone maps [B, C_i, H_i, W_i]; samples carry ``gt_sem_seg`` [1, H, W] (padded with
        ``ignore_index`` by mmseg's data preprocessor) -> ``loss_ce`` (+ ``d{i}.loss_ce``)."""
        refuse_training_keys(train_cfg, 'model.train_cfg')
        logit_sets = self(x, batch_data_samples)
        target = self._targets(batch_data_samples, logit_sets[-1].device)
        sets = logit_sets if self.deep_supervision else logit_sets[-1:]
        losses = {}
        for s in [len(sets) - 1] + list(range(len(sets) - 1)):
            name = set_name(s, len(sets))
            key = 'loss_ce' if name == 'final' else f'{name}.loss_ce'
            losses[key] = per_pixel_ce_loss(sets[s], target, self.ignore_index,
                                            self.align_corners) * self.loss_weight
        return losses

    def _targets(self, batch_data_samples: List, device: torch.device) -> Tensor:
        """The samples' ``gt_sem_seg`` as ``LongTensor[B, H, W]``, labels checked (one host sync)."""
        maps = []
        for index, sample in enumerate(batch_data_samples):
            sem_seg = sample.gt_sem_seg.data
            if sem_seg.dim() != 3 or sem_seg.shape[0] != 1 or (maps and sem_seg.shape != maps[0].shape):
                raise ValueError(f'image {index}: gt_sem_seg must be [1, H, W] with the batch\'s H, W (mmseg\'s data '
                                 f'preprocessor pads them), got {tuple(sem_seg.shape)}')
            maps.append(sem_seg)
        target = torch.cat(maps).to(device).long()
        valid = target != self.ignore_index
        bad = valid & ((target < 0) | (target >= self.num_classes))
        if bool(bad.any()):
            index = int(bad.flatten(1).any(1).nonzero()[0, 0])
            label = int(target[index][bad[index]][0])
            path = batch_data_samples[index].metainfo.get('img_path', '?')
            raise M2FConfigError(f'image {index} ({path}): gt_sem_seg has class {label}, but num_classes='
                                 f'{self.num_classes}; set the head\'s num_classes to the dataset\'s class count or map '
                                 f'the label to {self.ignore_index}')
        return target

    def predict(self, x: Sequence[Tensor], batch_img_metas: List[dict], test_cfg: Dict = None) -> Tensor:
        """x: backbone maps -> per-class logits [B, C, H', W'] at mmseg's output size (``pad_shape``;
        the crop in slide inference), upsampled bilinearly. ``test_cfg``: mmseg's keys only."""
        predict_test_cfg(self, test_cfg)
        logits = self(x)[-1]
        return F.interpolate(logits.float(), size=_output_size(batch_img_metas), mode='bilinear',
                             align_corners=self.align_corners)


@register_seg_model
class M2FPerPixelHead(_PerPixelSegLoss, BaseModule):
    """MaskFormer's per-pixel baseline: pixel decoder + 1x1 conv classifier (see the module docstring).

    Args:
        in_channels: backbone channels, finest first.
        num_classes: C (None = filled from the data by m2f_mm before the build).
        feat_channels: the pixel decoder's FPN width. out_channels: E.
        pixel_decoder: default ``M2FMaskFormerPixelDecoder`` without encoder; any registered pixel
            decoder whose first output is the per-pixel embedding [B, E, h, w] also works.
        strides: of the input levels (the pixel decoder's default when None).
        loss_weight: of the cross-entropy. ignore_index: label without a loss.
        align_corners: of the upsampling, and read by mmseg when it resizes to the original image.
    """

    deep_supervision = False  # one prediction

    def __init__(self, *, in_channels: Sequence[int], num_classes: Optional[int], feat_channels: int = 256,
                 out_channels: int = 256, pixel_decoder: Optional[Dict] = None,
                 strides: Optional[Sequence[int]] = None, loss_weight: float = 1.0, ignore_index: int = 255,
                 align_corners: bool = False, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        require_class_counts('decode_head', num_classes=num_classes)
        self.num_classes = num_classes
        set_mmseg_attributes(self, num_classes, align_corners)
        self.ignore_index, self.loss_weight = ignore_index, float(loss_weight)
        self.in_channels = list(in_channels)
        self.pixel_decoder = build_pixel_decoder(pixel_decoder, 'M2FMaskFormerPixelDecoder', in_channels,
                                                 feat_channels, out_channels, strides)
        self.predictor = Conv2d(out_channels, num_classes, kernel_size=1)

    def init_weights(self) -> None:
        """The pixel decoder's own scheme; the classifier as the original (caffe2 MSRA fill: Kaiming
        normal, fan-out, zero bias)."""
        self.pixel_decoder.init_weights()
        kaiming_init(self.predictor, mode='fan_out', nonlinearity='relu', bias=0, distribution='normal')
        self._is_init = True

    def forward(self, feats: Sequence[Tensor], batch_data_samples=None) -> List[Tensor]:
        """feats: backbone maps [B, C_i, H_i, W_i] -> one per-class logit set [B, C, h, w]."""
        mask_features = self.pixel_decoder(feats)[0]
        return [self.predictor(mask_features)]


@register_seg_model
class M2FPerPixelPlusHead(_PerPixelSegLoss, M2FMaskFormerSegHead):
    """MaskFormer's per-pixel baseline+: MaskFormer's head with query c <-> class c and per-pixel
    classification (see the module docstring).

    Args:
        num_classes: C, also the number of queries.
        num_queries: None or C (query c predicts class c).
        loss_weight: of every set's cross-entropy.
        deep_supervision: every decoder layer's logits get the loss (the original's setting), else
            only the last layer's.
        **kwargs: :class:`~m2f_mm.models.maskformer_head.M2FMaskFormerSegHead` arguments
            (``in_channels``, ``feat_channels``, ``out_channels``, ``pixel_decoder``,
            ``transformer_decoder``, ...) except ``criterion``: there is no matching.
    """

    def __init__(self, *, num_classes: Optional[int], num_queries: Optional[int] = None, loss_weight: float = 1.0,
                 deep_supervision: bool = True, **kwargs) -> None:
        if kwargs.get('criterion') is not None:
            raise M2FConfigError('M2FPerPixelPlusHead takes no criterion (its loss is per-pixel cross-entropy, '
                                 'weighted by loss_weight); leave criterion out')
        kwargs.pop('criterion', None)
        if num_queries is not None and num_classes is not None and num_queries != num_classes:
            raise M2FConfigError(f'M2FPerPixelPlusHead: num_queries={num_queries} but num_classes={num_classes}; query c '
                                 f'predicts class c, so leave num_queries out (it is num_classes)')
        super().__init__(num_classes=num_classes, num_queries=num_classes, **kwargs)
        del self.class_embed  # per-pixel classification: the class of query c is c
        self.loss_weight, self.deep_supervision = float(loss_weight), bool(deep_supervision)

    def _predict(self, query: Tensor, mask_features: Tensor) -> Tuple[None, Tensor]:
        """query: [B, C, D] (decoder-normed), mask_features: [B, E, h, w] -> (None, logits [B, C, h, w])."""
        return None, torch.einsum('bqc,bchw->bqhw', self.mask_embed(query), mask_features)

    def forward(self, feats: Sequence[Tensor], batch_data_samples=None) -> List[Tensor]:
        """feats: backbone maps [B, C_i, H_i, W_i] -> per-class logits [B, C, h, w] of every decoder
        layer, the last layer's last."""
        return M2FMaskFormerSegHead.forward(self, feats, batch_data_samples)[1]
