"""Semantic FPN pixel decoder (Kirillov et al., Panoptic FPN, 2019): the pixel-decoder ablation of
Mask2Former's Table 4 next to the plain FPN one.

Shape legend:
    B       batch
    C_i     backbone channels of input level i (strides 4, 8, 16, 32)
    D       feat_channels (width of the FPN outputs)
    S       scale_channels (width of the semantic branch)
    E       out_channels (the per-pixel embedding's width)
    H_l,W_l size of output level l; level 0 is the COARSEST (stride 32)
    h, w    stride-4 size (the mask logits' size)

The FPN part is :class:`~m2f_mm.models.fpn_pixel_decoder.M2FFPNPixelDecoder`'s (same parameters,
same multi-scale outputs for the transformer decoder). The difference is the per-pixel embedding:
instead of a 1x1 conv of the stride-4 FPN output alone, every FPN level goes through
``log2(stride / 4)`` stages of 3x3 conv + norm + ReLU + 2x bilinear upsampling (one conv stage
without upsampling for the stride-4 level), the branches are summed at stride 4 and a 1x1 conv
gives the embedding, so the embedding mixes all levels. Contract (docs/CONTRACTS.md):
``forward(feats) -> (mask_features [B, E, h, w], multi_scale [B, D, H_l, W_l] coarsest first)``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import Conv2d, ConvModule
from mmengine.model import ModuleList, caffe2_xavier_init
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.fpn_pixel_decoder import M2FFPNPixelDecoder
from m2f_mm.registry import register_model


class _ScaleHead(nn.Module):
    """One level of the semantic branch: ``stages`` x (3x3 conv + norm + act + 2x upsample), at least one conv."""

    def __init__(self, in_channels: int, channels: int, upsamples: int, norm_cfg: Optional[Dict],
                 act_cfg: Optional[Dict]) -> None:
        super().__init__()
        self.upsamples = upsamples
        self.convs = ModuleList([
            ConvModule(in_channels if i == 0 else channels, channels, kernel_size=3, padding=1,
                       bias=norm_cfg is None, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for i in range(max(upsamples, 1))])

    def forward(self, x: Tensor) -> Tensor:
        """[B, D, H_l, W_l] -> [B, S, H_l * 2**upsamples, W_l * 2**upsamples]."""
        for conv in self.convs:
            x = conv(x)
            if self.upsamples:
                x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
        return x


@register_model
class M2FSemanticFPNPixelDecoder(M2FFPNPixelDecoder):
    """FPN + Semantic FPN's all-level per-pixel embedding; see the module docstring.

    Args:
        scale_channels: S, width of the semantic branch (128 in Panoptic FPN).
        Other arguments: as :class:`M2FFPNPixelDecoder`.
    """

    def __init__(self, *, in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 strides: Sequence[int] = (4, 8, 16, 32), feat_channels: int = 256, out_channels: int = 256,
                 scale_channels: int = 128, num_outs: int = 3,
                 norm_cfg: Optional[Dict] = dict(type='GN', num_groups=32),
                 act_cfg: Optional[Dict] = dict(type='ReLU'), init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels=in_channels, strides=strides, feat_channels=feat_channels,
                         out_channels=out_channels, num_outs=num_outs, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         init_cfg=init_cfg)
        finest = min(strides)
        upsamples = []
        for stride in sorted(strides, reverse=True):  # coarsest first, like the FPN outputs
            steps = math.log2(stride / finest)
            if steps != int(steps):
                raise M2FConfigError(f'M2FSemanticFPNPixelDecoder: strides must be powers of two times the finest '
                                 f'stride ({finest}), got {list(strides)}')
            upsamples.append(int(steps))
        self.scale_heads = ModuleList([_ScaleHead(feat_channels, scale_channels, n, norm_cfg, act_cfg)
                                       for n in upsamples])
        self.mask_features = Conv2d(scale_channels, out_channels, kernel_size=1)

    def init_weights(self) -> None:
        super().init_weights()
        for head in self.scale_heads:
            for module in head.convs:
                caffe2_xavier_init(module.conv, bias=0)

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """
        Args:
            feats: backbone maps, finest first: [B, C_i, H_i, W_i] for ``strides``.

        Returns:
            mask_features: [B, E, h, w], the sum of every level's semantic branch, 1x1-convolved.
            multi_scale: ``num_outs`` maps [B, D, H_l, W_l], coarsest first (the FPN's).
        """
        outs = self.fpn(feats)
        size = outs[-1].shape[-2:]
        summed = None
        for head, out in zip(self.scale_heads, outs):
            branch = head(out)
            # odd input sizes: a 2x upsampled coarse map can be one pixel off the stride-4 map
            if branch.shape[-2:] != size:
                branch = F.interpolate(branch, size=size, mode='bilinear', align_corners=False)
            summed = branch if summed is None else summed + branch
        return self.mask_features(summed), outs[:self.num_outs]
