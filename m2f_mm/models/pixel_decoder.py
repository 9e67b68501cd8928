"""Multi-scale deformable-attention pixel decoder (Mask2Former, Sec. 3.2 / App. A).

Shape legend:
    B       batch
    C_i     backbone channels of input level i (strides 4, 8, 16, 32)
    D       feat_channels of the decoder (256)
    E       out_channels of the per-pixel embedding (256)
    L       number of levels the deformable encoder attends to (3: strides 32, 16, 8)
    H_l,W_l size of encoder level l; level 0 is the COARSEST (stride 32)
    N       sum_l H_l * W_l, all encoder tokens of one image
    h, w    stride-4 size (the mask logits' size)

Data flow: 1x1 conv + GN projects strides 32/16/8 to D channels; the tokens of all levels go
through ``num_layers`` deformable self-attention layers (each token samples ``num_points`` points
per head per level around its own grid centre); then one FPN step adds the (upsampled) stride-8
output to a lateral 1x1 conv of the stride-4 backbone map and a 3x3 conv + GN + ReLU follows; a
final 1x1 conv gives the per-pixel embedding.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import Conv2d, ConvModule
from mmcv.ops import MultiScaleDeformableAttention
from mmdet.models.layers import SinePositionalEncoding
from mmengine.model import BaseModule, ModuleList, caffe2_xavier_init, normal_init, xavier_init
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.mmdet_compat import encoder_layer_kwargs, sine_encoding_kwargs
from m2f_mm.ops import MSDeformAttn
from m2f_mm.registry import register_model


class M2FDeformEncoderLayer(BaseModule):
    """Post-norm encoder layer: deformable self-attention -> LN -> FFN -> LN.

    Parameter names follow facebookresearch/Mask2Former (``norm1``, ``linear1`` ...), with
    :class:`m2f_mm.ops.MSDeformAttn` (mmcv's ``MultiScaleDeformableAttention`` parameters) as
    ``self_attn``: mmcv's CUDA kernel on GPU, m2f_mm's compiled kernel on CPU.
    """

    def __init__(self, *, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 3,
                 num_points: int = 4, feedforward_channels: int = 1024, im2col_step: int = 64,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.self_attn = MSDeformAttn(
            embed_dims=embed_dims, num_heads=num_heads, num_levels=num_levels, num_points=num_points,
            im2col_step=im2col_step, dropout=0.0, batch_first=True)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.linear1 = nn.Linear(embed_dims, feedforward_channels)
        self.linear2 = nn.Linear(feedforward_channels, embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)

    @classmethod
    def from_cfg(cls, layer_cfg: dict) -> 'M2FDeformEncoderLayer':
        """Build from our typed keywords or from mmdet's ``layer_cfg`` (self_attn_cfg + ffn_cfg)."""
        return cls(**encoder_layer_kwargs(layer_cfg))

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor, level_sizes: Optional[Sequence[Tuple[int, int]]] = None) -> Tensor:
        """
        Args:
            query: [B, N, D] tokens of all levels (coarsest first).
            query_pos: [B, N, D] sine encoding + level embedding.
            reference_points: [B, N, L, 2] normalised (x, y) in [0, 1].
            spatial_shapes: LongTensor[L, 2] (H_l, W_l).
            level_start_index: LongTensor[L] offset of each level in N.
            level_sizes: optional spatial_shapes as Python pairs (keeps exported graphs size-generic).

        Returns:
            [B, N, D].
        """
        # mmcv adds the residual (identity = query without pos) inside the op; the values are the
        # tokens without position, the offsets/weights are predicted from tokens + position.
        query = self.self_attn(query=query, value=query, query_pos=query_pos, reference_points=reference_points,
                               spatial_shapes=spatial_shapes, level_start_index=level_start_index,
                               level_sizes=level_sizes)
        query = self.norm1(query)
        query = self.norm2(query + self.linear2(F.relu(self.linear1(query))))
        return query


def grid_reference_points(spatial_shapes: Sequence[Tuple[int, int]], device: torch.device) -> Tensor:
    """Centres of every cell of every level, normalised by that level's own size.

    Returns:
        [N, 2] (x, y) in (0, 1): ((j + 0.5) / W_l, (i + 0.5) / H_l). No padding mask is used, so
        (as in mmdet) the same point is used for every level (valid ratio 1).
    """
    points = []
    for h, w in spatial_shapes:
        ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        yy, xx = torch.meshgrid(ys, xs, indexing='ij')
        points.append(torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=-1))
    return torch.cat(points, dim=0)


@register_model
class M2FPixelDecoder(BaseModule):
    """Deformable-attention encoder over strides 32/16/8 + one FPN step to stride 4.

    Args:
        in_channels: backbone channels per input level, finest first (e.g. [256, 512, 1024, 2048]).
        strides: strides of the input levels, finest first ([4, 8, 16, 32]).
        feat_channels: D, width of the encoder and FPN.
        out_channels: E, width of the per-pixel embedding.
        num_outs: how many encoder outputs to return as multi-scale features (coarsest first).
        norm_cfg / act_cfg: for the projections and FPN convs (GN(32) / ReLU in the paper).
        encoder: ``dict(num_layers=6, layer_cfg=..., num_cp=0)``; ``layer_cfg`` is either our typed
            keywords (embed_dims, num_heads, num_levels, num_points, feedforward_channels) or mmdet's
            ``self_attn_cfg`` + ``ffn_cfg``; ``num_cp`` layers (the first ones) recompute their
            activations in backward (activation checkpointing: less memory, more time), as mmdet's.
        positional_encoding: kwargs of mmdet's ``SinePositionalEncoding``; num_feats must be D / 2.
            Defaults to ``dict(num_feats=D // 2, normalize=True)``.
    """

    def __init__(self, *, in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 strides: Sequence[int] = (4, 8, 16, 32), feat_channels: int = 256, out_channels: int = 256,
                 num_outs: int = 3, norm_cfg: Dict = dict(type='GN', num_groups=32),
                 act_cfg: Dict = dict(type='ReLU'), encoder: Optional[Dict] = None,
                 positional_encoding: Optional[Dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        encoder = dict(encoder or dict(num_layers=6, layer_cfg=dict()))
        if len(strides) != len(in_channels):
            raise M2FConfigError(f'M2FPixelDecoder: {len(in_channels)} in_channels but {len(strides)} strides')
        self.in_channels = list(in_channels)
        self.strides = list(strides)
        num_layers = encoder.pop('num_layers', 6)
        layer_cfg = encoder.pop('layer_cfg', {})
        self.num_cp = int(encoder.pop('num_cp', 0))  # activation checkpointing of the first num_cp layers
        if not 0 <= self.num_cp <= num_layers:
            raise M2FConfigError(f'pixel_decoder.encoder.num_cp must be in [0, num_layers={num_layers}], got {self.num_cp}')
        if encoder:
            raise M2FConfigError(f'pixel_decoder.encoder: unsupported keys {sorted(encoder)}')
        layers = [M2FDeformEncoderLayer.from_cfg(layer_cfg) for _ in range(num_layers)]
        self.encoder = nn.Module()
        self.encoder.layers = ModuleList(layers)
        self.num_levels = layers[0].self_attn.num_levels if layers else 3
        if layers and layers[0].embed_dims != feat_channels:
            raise M2FConfigError(f'encoder embed_dims {layers[0].embed_dims} != feat_channels {feat_channels}')
        if not 1 <= self.num_levels < len(in_channels):
            raise M2FConfigError(f'encoder num_levels must be in [1, {len(in_channels) - 1}] for '
                                 f'{len(in_channels)} inputs, got {self.num_levels}')
        if not 1 <= num_outs <= self.num_levels:
            raise M2FConfigError(f'num_outs must be in [1, {self.num_levels}], got {num_outs}')
        self.num_outs = num_outs

        # Projections, coarsest level first (index 0 = stride 32), as the encoder orders tokens.
        self.input_projs = ModuleList([
            ConvModule(in_channels[i], feat_channels, kernel_size=1, norm_cfg=norm_cfg, act_cfg=None, bias=True)
            for i in range(len(in_channels) - 1, len(in_channels) - 1 - self.num_levels, -1)])
        self.positional_encoding = SinePositionalEncoding(
            **sine_encoding_kwargs(positional_encoding, feat_channels, 'pixel_decoder.positional_encoding'))
        self.level_embed = nn.Embedding(self.num_levels, feat_channels)

        # FPN over the levels the encoder did not see (stride 4), coarse to fine. With a norm the
        # conv bias is redundant, as in mmdet / detectron2.
        use_bias = norm_cfg is None
        self.lateral_convs = ModuleList()
        self.output_convs = ModuleList()
        for i in range(len(in_channels) - self.num_levels - 1, -1, -1):
            self.lateral_convs.append(ConvModule(in_channels[i], feat_channels, kernel_size=1, bias=use_bias,
                                                 norm_cfg=norm_cfg, act_cfg=None))
            self.output_convs.append(ConvModule(feat_channels, feat_channels, kernel_size=3, padding=1,
                                                bias=use_bias, norm_cfg=norm_cfg, act_cfg=act_cfg))
        self.mask_features = Conv2d(feat_channels, out_channels, kernel_size=1)

    def init_weights(self) -> None:
        """Same scheme as mmdet's MSDeformAttnPixelDecoder (and detectron2's)."""
        for proj in self.input_projs:
            xavier_init(proj.conv, gain=1, bias=0, distribution='uniform')
        for lateral, output in zip(self.lateral_convs, self.output_convs):
            caffe2_xavier_init(lateral.conv, bias=0)
            caffe2_xavier_init(output.conv, bias=0)
        caffe2_xavier_init(self.mask_features, bias=0)
        normal_init(self.level_embed, mean=0, std=1)
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        for m in self.encoder.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()  # sampling-offset fan init, zero attention weights
        self._is_init = True

    def _check_inputs(self, feats: Sequence[Tensor]) -> None:
        if len(feats) != len(self.in_channels):
            raise M2FConfigError(f'M2FPixelDecoder expects {len(self.in_channels)} feature maps (strides '
                                 f'{self.strides}), got {len(feats)}')
        for i, (feat, channels) in enumerate(zip(feats, self.in_channels)):
            if feat.dim() != 4 or feat.shape[1] != channels:
                raise M2FConfigError(f'M2FPixelDecoder input {i} (stride {self.strides[i]}): expected '
                                     f'[B, {channels}, H, W], got {list(feat.shape)}')
            if feat.shape[-2] < 1 or feat.shape[-1] < 1:
                raise M2FConfigError(f'M2FPixelDecoder input {i} (stride {self.strides[i]}) is empty: '
                                     f'{list(feat.shape)}; images must be at least {max(self.strides)} px')

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """
        Args:
            feats: backbone maps, finest first: [B, C_i, H_i, W_i] for strides 4, 8, 16, 32.

        Returns:
            mask_features: [B, E, h, w] stride-4 per-pixel embedding.
            multi_scale: ``num_outs`` maps [B, D, H_l, W_l], coarsest (1/32) first.
        """
        self._check_inputs(feats)
        batch = feats[0].shape[0]
        tokens, pos, shapes = [], [], []
        for lvl in range(self.num_levels):
            feat = feats[len(feats) - 1 - lvl]
            h, w = feat.shape[-2:]
            shapes.append((h, w))
            tokens.append(self.input_projs[lvl](feat).flatten(2).transpose(1, 2))  # [B, H_l*W_l, D]
            # No padding mask: the sine code is the same for every image, so compute it once.
            no_pad = feat.new_zeros((1, h, w), dtype=torch.bool)
            level_pos = self.positional_encoding(no_pad) + self.level_embed.weight[lvl].view(1, -1, 1, 1)
            pos.append(level_pos.flatten(2).transpose(1, 2).expand(batch, -1, -1))
        query = torch.cat(tokens, dim=1)  # [B, N, D]
        query_pos = torch.cat(pos, dim=1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=query.device)
        sizes = [h * w for h, w in shapes]
        level_start_index = torch.as_tensor([0] + sizes[:-1], dtype=torch.long, device=query.device).cumsum(0)
        reference_points = grid_reference_points(shapes, query.device)[None, :, None, :].expand(
            batch, -1, self.num_levels, -1)  # [B, N, L, 2]
        for i, layer in enumerate(self.encoder.layers):
            args = (query, query_pos, reference_points, spatial_shapes, level_start_index, shapes)
            if i < self.num_cp and self.training and torch.is_grad_enabled():
                # recompute this layer's activations in backward instead of keeping them (memory for time)
                query = checkpoint(layer, *args, use_reentrant=False)
            else:
                query = layer(*args)

        outs = [x.transpose(1, 2).reshape(batch, -1, h, w)
                for x, (h, w) in zip(query.split(sizes, dim=1), shapes)]
        # FPN step(s) to the finer levels, upsampling the previous (coarser) output.
        for j, i in enumerate(range(len(feats) - self.num_levels - 1, -1, -1)):
            lateral = self.lateral_convs[j](feats[i])
            y = lateral + F.interpolate(outs[-1], size=lateral.shape[-2:], mode='bilinear', align_corners=False)
            outs.append(self.output_convs[j](y))
        return self.mask_features(outs[-1]), outs[:self.num_outs]
