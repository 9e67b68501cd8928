"""MaskFormer's pixel decoder: a top-down FPN, optionally with a DETR transformer encoder on the 1/32 map.

Shape legend:
    B       batch
    C_i     backbone channels of input level i (strides 4, 8, 16, 32; n levels)
    D       feat_channels (FPN width; the encoder's width)
    E       out_channels (per-pixel embedding width)
    h, w    stride-4 size; H32, W32 stride-32 size

Data flow (MaskFormer paper Sec. 3.3, its ``BasePixelDecoder`` / ``TransformerEncoderPixelDecoder``):
the coarsest backbone map goes through a 3x3 conv + GN + ReLU (``last_feat_conv``) or, with an
``encoder``, through a 1x1 projection to D, six DETR encoder layers with the sine encoding of the map
(padding excluded) and a 3x3 conv + GN + ReLU (``encoder_out_proj``); each finer level adds a 1x1
lateral conv + GN of its backbone map to the NEAREST-upsampled coarser output (Mask2Former's FPN
upsamples bilinearly) and applies a 3x3 conv + GN + ReLU; a 3x3 conv of the stride-4 output is the
per-pixel embedding (Mask2Former's is 1x1).

It also returns the map MaskFormer's transformer decoder attends to (``memory``): the encoder's
output when there is an encoder (the original's ``transformer_in_feature='transformer_encoder'``),
else the backbone's 1/32 map itself (``'res5'``).

Contract: ``forward(feats, padding_mask=None) -> (mask_features [B, E, h, w], memory [B, memory_channels, H32, W32])``;
attributes ``strides``, ``memory_channels``, ``takes_padding_mask``.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import Conv2d, ConvModule
from mmdet.models.layers import SinePositionalEncoding
from mmengine.model import BaseModule, ModuleList, caffe2_xavier_init
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.detr_decoder import M2FDETREncoder
from m2f_mm.models.mmdet_compat import sine_encoding_kwargs
from m2f_mm.registry import register_model

GN32 = dict(type='GN', num_groups=32)


@register_model
class M2FMaskFormerPixelDecoder(BaseModule):
    """See the module docstring.

    Args:
        in_channels: backbone channels per level, finest first (e.g. [256, 512, 1024, 2048]).
        strides: their strides, finest first.
        feat_channels: D. out_channels: E.
        encoder: None (plain FPN) or ``M2FDETREncoder`` keywords (``num_layers``, ``layer_cfg``); its
            ``embed_dims`` must equal ``feat_channels``.
        positional_encoding: sine encoding of the encoder's input (default D/2 features, normalized).
        norm_cfg / act_cfg: of the FPN convs (GN(32) / ReLU).
    """

    takes_padding_mask = True

    def __init__(self, *, in_channels: Sequence[int] = (256, 512, 1024, 2048), strides: Sequence[int] = (4, 8, 16, 32),
                 feat_channels: int = 256, out_channels: int = 256, encoder: Optional[Dict] = None,
                 positional_encoding: Optional[Dict] = None, norm_cfg: Optional[Dict] = GN32,
                 act_cfg: Optional[Dict] = dict(type='ReLU'), init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(strides) != len(in_channels) or len(in_channels) < 2:
            raise M2FConfigError(f'M2FMaskFormerPixelDecoder: need >= 2 input levels and one stride per level, got '
                                 f'in_channels={list(in_channels)}, strides={list(strides)}')
        self.in_channels, self.strides = list(in_channels), list(strides)
        use_bias = norm_cfg is None  # a norm after the conv makes its bias redundant
        fpn = dict(bias=use_bias, norm_cfg=norm_cfg)
        self.lateral_convs = ModuleList([ConvModule(c, feat_channels, 1, act_cfg=None, **fpn)
                                         for c in in_channels[:-1]])
        self.output_convs = ModuleList([ConvModule(feat_channels, feat_channels, 3, padding=1, act_cfg=act_cfg, **fpn)
                                        for _ in in_channels[:-1]])
        if encoder is None:
            if positional_encoding is not None:
                raise M2FConfigError('pixel_decoder.positional_encoding is only used with an encoder; leave it out')
            self.last_feat_conv = ConvModule(in_channels[-1], feat_channels, 3, padding=1, act_cfg=act_cfg, **fpn)
            self.encoder = None
            self.memory_channels = in_channels[-1]
        else:
            encoder = dict(encoder)
            encoder.pop('type', None)
            self.encoder_in_proj = Conv2d(in_channels[-1], feat_channels, kernel_size=1)
            self.encoder = M2FDETREncoder(**encoder)
            if self.encoder.embed_dims != feat_channels:
                raise M2FConfigError(f'pixel_decoder.encoder embed_dims {self.encoder.embed_dims} must equal '
                                     f'feat_channels {feat_channels}')
            self.positional_encoding = SinePositionalEncoding(
                **sine_encoding_kwargs(positional_encoding, feat_channels, 'pixel_decoder.positional_encoding'))
            self.encoder_out_proj = ConvModule(feat_channels, feat_channels, 3, padding=1, act_cfg=act_cfg, **fpn)
            self.memory_channels = feat_channels
        self.mask_features = Conv2d(feat_channels, out_channels, kernel_size=3, padding=1)

    def init_weights(self) -> None:
        """caffe2 Xavier on the convs (zero biases), Xavier-uniform on the encoder's matrices."""
        convs = [m.conv for m in list(self.lateral_convs) + list(self.output_convs)] + [self.mask_features]
        if self.encoder is None:
            convs.append(self.last_feat_conv.conv)
        else:
            convs += [self.encoder_in_proj, self.encoder_out_proj.conv]
            self.encoder.init_weights()
        for conv in convs:
            caffe2_xavier_init(conv, bias=0)
        self._is_init = True

    def _encode(self, feat: Tensor, padding_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """feat: [B, C_last, H32, W32], padding_mask: BoolTensor[B, H32, W32] or None ->
        (encoded memory [B, D, H32, W32], top of the FPN [B, D, H32, W32])."""
        b, _, h, w = feat.shape
        if padding_mask is None:
            padding_mask = feat.new_zeros((b, h, w), dtype=torch.bool)
        pos = self.positional_encoding(padding_mask).flatten(2).transpose(1, 2)
        x = self.encoder_in_proj(feat).flatten(2).transpose(1, 2)
        x = self.encoder(x, pos, padding_mask.flatten(1))
        memory = x.transpose(1, 2).reshape(b, -1, h, w)
        return memory, self.encoder_out_proj(memory)

    def forward(self, feats: Sequence[Tensor], padding_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """
        Args:
            feats: backbone maps, finest first: [B, C_i, H_i, W_i] for ``strides``.
            padding_mask: BoolTensor[B, H32, W32], True = padding of the batch (read by the encoder only).

        Returns:
            mask_features: [B, E, h, w]; memory: [B, memory_channels, H32, W32].
        """
        if len(feats) != len(self.in_channels):
            raise M2FConfigError(f'M2FMaskFormerPixelDecoder expects {len(self.in_channels)} feature maps (strides '
                                 f'{self.strides}), got {len(feats)}')
        if self.encoder is None:
            memory, y = feats[-1], self.last_feat_conv(feats[-1])
        else:
            memory, y = self._encode(feats[-1], padding_mask)
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.lateral_convs[i](feats[i])
            y = self.output_convs[i](lateral + F.interpolate(y, size=lateral.shape[-2:], mode='nearest'))
        return self.mask_features(y), memory
