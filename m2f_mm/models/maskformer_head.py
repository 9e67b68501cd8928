"""MaskFormer head: pixel decoder + DETR transformer decoder + class / mask-embedding heads.

Shape legend:
    B       batch
    C_i     backbone channels of input level i (strides 4, 8, 16, 32)
    Q       queries (100)
    D       transformer width (256)
    E       out_channels, per-pixel / mask embedding width
    C       classes (things + stuff); index C = no-object
    H, W    padded batch input (``batch_input_shape``); h, w = H/4, W/4; H32, W32 = H/32, W/32
    K       H32 * W32, the keys of the decoder's cross-attention

MaskFormer (Cheng et al., "Per-Pixel Classification is Not All You Need for Semantic Segmentation",
NeurIPS 2021), from the package's parts: :class:`~m2f_mm.models.maskformer_pixel_decoder.M2FMaskFormerPixelDecoder`
gives the per-pixel embedding [B, E, h, w] and the 1/32 map the decoder attends to (its transformer
encoder's output, or the backbone's map projected to D by ``input_proj``);
:class:`~m2f_mm.models.detr_decoder.M2FDETRDecoder` decodes Q zero-initialised queries with learnable
positions; each layer's output gives class logits [B, Q, C+1] (``class_embed``) and mask logits
``mask_embed(q) . per-pixel embedding`` [B, Q, h, w]. All layers are supervised, with
:class:`~m2f_mm.models.criterion.M2FCriterion` in its MaskFormer setting (full-mask focal + dice
losses, matching at the mask resolution); inference is :class:`~m2f_mm.models.fusion.M2FFusionHead`'s,
shared with Mask2Former.

Padding: the batch's padding (``img_shape`` inside ``batch_input_shape``) is excluded from the
decoder's keys and from the sine encoding's normalisation, as in DETR and mmdet's MaskFormer;
the mmseg head (:class:`M2FMaskFormerSegHead`) ignores padding, as mmseg's MaskFormer does.

The same contract as :class:`~m2f_mm.models.head.M2FHead` (``forward``, ``loss``, ``predict``,
``get_targets``), so ``M2FDetector`` and mmseg's ``EncoderDecoder`` run either head.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import Conv2d
from mmdet.models.layers import SinePositionalEncoding
from mmengine.model import BaseModule, caffe2_xavier_init
from torch import Tensor

from m2f_mm.models.detr_decoder import M2FDETRDecoder
from m2f_mm.models.head import MLP, M2FHead, build_pixel_decoder
from m2f_mm.models.mmdet_compat import sine_encoding_kwargs
from m2f_mm.models.seg_head import M2FSegHead, head_test_cfg, semantic_class_counts, set_mmseg_attributes
from m2f_mm.models.test_config import TestConfig
from m2f_mm.registry import MODELS, register_model, register_seg_model

DETR_DECODER_TYPES = (None, 'M2FDETRDecoder', 'DetrTransformerDecoder', M2FDETRDecoder)


def padding_mask_from_metas(batch_data_samples, size: Tuple[int, int], device: torch.device) -> Optional[Tensor]:
    """The batch's padding at a feature map's size, or None without metas.

    Args:
        batch_data_samples: data samples whose metainfo has ``batch_input_shape`` (H, W) and ``img_shape``.
        size: (H32, W32) of the map.

    Returns:
        BoolTensor[B, H32, W32], True = padding: the input-resolution padding nearest-resized, as mmdet.
    """
    if not batch_data_samples:
        return None
    metas = [s.metainfo for s in batch_data_samples]
    if any('batch_input_shape' not in m or 'img_shape' not in m for m in metas):
        return None
    height, width = (int(v) for v in metas[0]['batch_input_shape'][:2])
    padding = torch.ones((len(metas), height, width), dtype=torch.float32, device=device)
    for b, meta in enumerate(metas):
        img_h, img_w = (int(v) for v in meta['img_shape'][:2])
        padding[b, :img_h, :img_w] = 0
    return F.interpolate(padding.unsqueeze(1), size=tuple(size), mode='nearest').squeeze(1).bool()


@register_model
class M2FMaskFormerHead(M2FHead):
    """See the module docstring. Config keys mirror mmdet's ``MaskFormerHead`` where they overlap; the
    losses and the matcher live in one ``criterion`` (``M2FCriterion``) instead of loss_cls / loss_mask /
    loss_dice and ``train_cfg.assigner``.

    Args:
        in_channels: backbone channels, finest first.
        feat_channels: D of the pixel decoder and transformer. out_channels: E.
        num_things_classes / num_stuff_classes: class counts (None = filled from the data by m2f_mm).
        num_queries: Q.
        pixel_decoder: default ``M2FMaskFormerPixelDecoder`` (plain FPN); any registered pixel decoder
            whose second output is the map to attend to (or a list of maps, coarsest first) also works.
        enforce_decoder_input_project: project the memory with a 1x1 conv even when its width is D.
        transformer_decoder: ``M2FDETRDecoder`` keywords (mmdet's ``DetrTransformerDecoder`` keys accepted).
        positional_encoding: sine encoding of the memory (default D/2 features, normalized).
        criterion: ``M2FCriterion`` config; None = inference only.
    """

    uses_padding_mask = True

    def __init__(self, *, in_channels: Sequence[int], feat_channels: int = 256, out_channels: int = 256,
                 num_things_classes: Optional[int] = 80, num_stuff_classes: Optional[int] = 53, num_queries: int = 100,
                 pixel_decoder: Optional[Dict] = None, enforce_decoder_input_project: bool = False,
                 transformer_decoder: Optional[Dict] = None, positional_encoding: Optional[Dict] = None,
                 criterion: Optional[Dict] = None, strides: Optional[Sequence[int]] = None, ignore_index: int = 255,
                 train_cfg: Optional[Dict] = None, init_cfg: Optional[dict] = None) -> None:
        BaseModule.__init__(self, init_cfg=init_cfg)  # M2FHead's __init__ builds Mask2Former's modules
        self.train_masks_of = 'every_set'  # MaskFormer's full-mask losses use every set's dense logits
        self._set_classes_and_queries(num_things_classes, num_stuff_classes, num_queries, ignore_index, in_channels)
        self.learnable_query_features = False  # zero query features, as DETR
        self.pixel_decoder = build_pixel_decoder(pixel_decoder, 'M2FMaskFormerPixelDecoder', in_channels,
                                                 feat_channels, out_channels, strides)

        td_cfg = copy.deepcopy(dict(transformer_decoder or {}))
        kind = td_cfg.pop('type', None)
        if kind in DETR_DECODER_TYPES:
            self.transformer_decoder = M2FDETRDecoder(**td_cfg)
        else:
            self.transformer_decoder = MODELS.build(dict(td_cfg, type=kind))
        dims = self.transformer_decoder.embed_dims

        memory_channels = getattr(self.pixel_decoder, 'memory_channels', feat_channels)
        self.input_proj = (Conv2d(memory_channels, dims, kernel_size=1)
                           if memory_channels != dims or enforce_decoder_input_project else nn.Identity())
        self.positional_encoding = SinePositionalEncoding(
            **sine_encoding_kwargs(positional_encoding, dims, 'positional_encoding'))
        self.query_embed = nn.Embedding(num_queries, dims)  # learnable query positions
        self.class_embed = nn.Linear(dims, self.num_classes + 1)
        self.mask_embed = MLP(in_dims=dims, hidden_dims=dims, out_dims=out_channels)

        self._set_training(criterion, train_cfg)

    @property
    def first_supervised_set(self) -> int:
        return 0  # every set comes from a decoder layer (there is no prediction before layer 1)

    def init_weights(self) -> None:
        """As mmdet's MaskFormerHead: caffe2 Xavier on the input projection, the pixel decoder's own scheme,
        Xavier-uniform on the transformer decoder's matrices."""
        if isinstance(self.input_proj, Conv2d):
            caffe2_xavier_init(self.input_proj, bias=0)
        self.pixel_decoder.init_weights()
        self.transformer_decoder.init_weights()
        self._is_init = True

    def forward(self, feats: Sequence[Tensor], batch_data_samples=None, *,
                masks_of: str = 'every_set') -> Tuple[List[Tensor], List[Optional[Tensor]]]:
        """
        Args:
            feats: backbone maps [B, C_i, H_i, W_i], strides 4, 8, 16, 32.
            batch_data_samples: optional; ``batch_input_shape`` / ``img_shape`` give the padding mask.
            masks_of: ``'every_set'`` (training) or ``'last_set'`` (inference: the other sets' masks are
                None; no attention mask depends on them here).

        Returns:
            cls_logits_per_set: num_decoder_layers tensors [B, Q, C+1].
            mask_logits_per_set: num_decoder_layers tensors [B, Q, h, w]; the last is the final layer's.
        """
        if masks_of not in ('every_set', 'last_set'):
            raise ValueError(f"masks_of must be 'every_set' or 'last_set', got {masks_of!r}")
        self._check_batch(feats, batch_data_samples)
        padding = (padding_mask_from_metas(batch_data_samples, feats[-1].shape[-2:], feats[-1].device)
                   if self.uses_padding_mask else None)
        if getattr(self.pixel_decoder, 'takes_padding_mask', False):
            mask_features, memory = self.pixel_decoder(feats, padding)
        else:
            mask_features, memory = self.pixel_decoder(feats)
        if isinstance(memory, (list, tuple)):  # multi-scale pixel decoders: attend to the coarsest map
            memory = memory[0]
        batch, _, height, width = memory.shape
        if padding is None:
            padding = memory.new_zeros((batch, height, width), dtype=torch.bool)
        elif padding.shape[-2:] != memory.shape[-2:]:
            padding = F.interpolate(padding[:, None].float(), size=(height, width), mode='nearest')[:, 0].bool()
        pos = self.positional_encoding(padding).flatten(2).transpose(1, 2)  # [B, K, D]
        memory = self.input_proj(memory).flatten(2).transpose(1, 2)  # [B, K, D]
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        outputs = self.transformer_decoder(torch.zeros_like(query_pos), query_pos, memory, pos,
                                           padding.flatten(1) if bool(padding.any()) else None)
        cls_sets, mask_sets = [], []
        for index, query in enumerate(outputs):
            if masks_of == 'last_set' and index + 1 < len(outputs):
                cls_sets.append(self.class_embed(query))
                mask_sets.append(None)
                continue
            cls_logits, mask_logits = self._predict(query, mask_features)
            cls_sets.append(cls_logits)
            mask_sets.append(mask_logits)
        return cls_sets, mask_sets


@register_seg_model
class M2FMaskFormerSegHead(M2FMaskFormerHead):
    """MaskFormer decode head for mmseg's ``EncoderDecoder`` (semantic segmentation).

    Args:
        num_classes: semantic classes C (no-object is added internally).
        align_corners: read by mmseg when it resizes our scores to the original image.
        ignore_index: label of pixels that belong to no segment.
        test_cfg: ``query_chunk_size``, as :class:`~m2f_mm.models.seg_head.M2FSegHead`'s.
        **kwargs: :class:`M2FMaskFormerHead` arguments.

    Losses and semantic inference are :class:`~m2f_mm.models.seg_head.M2FSegHead`'s (the sum over queries
    of class probability x mask probability, scores at the padded input size).
    """

    uses_padding_mask = False  # as mmseg's MaskFormerHead, which sets batch_input_shape = img_shape
    test_keys = M2FSegHead.test_keys

    def __init__(self, *, num_classes: Optional[int], align_corners: bool = False, ignore_index: int = 255,
                 test_cfg: Optional[Dict] = None, **kwargs) -> None:
        settings = head_test_cfg(self, test_cfg)  # checked before the modules are built
        super().__init__(**semantic_class_counts(type(self).__name__, num_classes, kwargs), ignore_index=ignore_index,
                         **kwargs)
        set_mmseg_attributes(self, num_classes, align_corners)
        self.test_cfg: TestConfig = settings

    loss = M2FSegHead.loss
    predict = M2FSegHead.predict
