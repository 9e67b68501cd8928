"""Plain FPN pixel decoder: the paper's pixel-decoder ablation (MaskFormer's decoder) and a faster
drop-in for :class:`~m2f_mm.models.pixel_decoder.M2FPixelDecoder` (same inputs, same outputs, no
deformable attention).

Shape legend:
    B       batch
    C_i     backbone channels of input level i (strides 4, 8, 16, 32)
    D       feat_channels (the multi-scale maps' width)
    E       out_channels (the per-pixel embedding's width)
    H_l,W_l size of output level l; level 0 is the COARSEST (stride 32)
    h, w    stride-4 size (the mask logits' size)

Data flow (top-down, coarsest first): the stride-32 map goes through a 3x3 conv + norm + act; each
finer level adds a lateral 1x1 conv + norm of its backbone map to the bilinearly upsampled coarser
output and applies a 3x3 conv + norm + act. The first ``num_outs`` outputs (1/32, 1/16, 1/8) feed
the transformer decoder; a 1x1 conv of the stride-4 output is the per-pixel embedding, as in
M2FPixelDecoder. Contract (docs/CONTRACTS.md): ``forward(feats) -> (mask_features [B, E, h, w],
multi_scale [B, D, H_l, W_l] coarsest first)``, attributes ``num_outs`` and ``strides``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import Conv2d, ConvModule
from mmengine.model import BaseModule, ModuleList, caffe2_xavier_init
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.registry import register_model


@register_model
class M2FFPNPixelDecoder(BaseModule):
    """Top-down FPN over all backbone levels; see the module docstring.

    Args:
        in_channels: backbone channels per input level, finest first (e.g. [256, 512, 1024, 2048]).
        strides: strides of the input levels, finest first ([4, 8, 16, 32]).
        feat_channels: D, width of every FPN output.
        out_channels: E, width of the per-pixel embedding.
        num_outs: how many of the coarsest outputs are returned as multi-scale features (coarsest
            first); at most ``len(in_channels) - 1`` (the stride-4 map is the embedding's input).
        norm_cfg / act_cfg: of the FPN convs (GN(32) / ReLU, as M2FPixelDecoder).
    """

    def __init__(self, *, in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 strides: Sequence[int] = (4, 8, 16, 32), feat_channels: int = 256, out_channels: int = 256,
                 num_outs: int = 3, norm_cfg: Optional[Dict] = dict(type='GN', num_groups=32),
                 act_cfg: Optional[Dict] = dict(type='ReLU'), init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(strides) != len(in_channels) or len(in_channels) < 2:
            raise M2FConfigError(f'M2FFPNPixelDecoder: need >= 2 input levels and one stride per level, got '
                                 f'in_channels={list(in_channels)}, strides={list(strides)}')
        if not 1 <= num_outs < len(in_channels):
            raise M2FConfigError(f'M2FFPNPixelDecoder: num_outs must be in [1, {len(in_channels) - 1}], got {num_outs}')
        self.in_channels, self.strides, self.num_outs = list(in_channels), list(strides), num_outs
        use_bias = norm_cfg is None  # a norm after the conv makes its bias redundant
        coarsest = len(in_channels) - 1
        # output_convs[j]: level j from the coarsest; lateral_convs[j - 1] feeds level j >= 1.
        self.lateral_convs = ModuleList([
            ConvModule(in_channels[i], feat_channels, kernel_size=1, bias=use_bias, norm_cfg=norm_cfg, act_cfg=None)
            for i in range(coarsest - 1, -1, -1)])
        self.output_convs = ModuleList([
            ConvModule(in_channels[coarsest] if i == coarsest else feat_channels, feat_channels, kernel_size=3,
                       padding=1, bias=use_bias, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for i in range(coarsest, -1, -1)])
        self.mask_features = Conv2d(feat_channels, out_channels, kernel_size=1)

    def init_weights(self) -> None:
        """caffe2 Xavier on every conv, zero biases (M2FPixelDecoder's scheme for its FPN part)."""
        for module in list(self.lateral_convs) + list(self.output_convs):
            caffe2_xavier_init(module.conv, bias=0)
        caffe2_xavier_init(self.mask_features, bias=0)
        self._is_init = True

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """
        Args:
            feats: backbone maps, finest first: [B, C_i, H_i, W_i] for ``strides``.

        Returns:
            mask_features: [B, E, h, w] per-pixel embedding at the finest stride.
            multi_scale: ``num_outs`` maps [B, D, H_l, W_l], coarsest first.
        """
        outs = self.fpn(feats)
        return self.mask_features(outs[-1]), outs[:self.num_outs]

    def fpn(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """The top-down pathway: backbone maps, finest first -> every FPN output [B, D, H_i, W_i],
        COARSEST first (the last one at the finest stride)."""
        if len(feats) != len(self.in_channels):
            raise M2FConfigError(f'{type(self).__name__} expects {len(self.in_channels)} feature maps (strides '
                                 f'{self.strides}), got {len(feats)}')
        outs = [self.output_convs[0](feats[-1])]
        for j in range(1, len(feats)):
            lateral = self.lateral_convs[j - 1](feats[-1 - j])
            top_down = F.interpolate(outs[-1], size=lateral.shape[-2:], mode='bilinear', align_corners=False)
            outs.append(self.output_convs[j](lateral + top_down))
        return outs
