"""detectron2 (official Mask2Former) checkpoints -> m2f_mm (m2f_mm/checkpoints_d2.py, d2_to_m2f.py).

The detectron2 side is a minimal re-creation of the official modules, with their exact attribute
names and forward passes, transcribed from facebookresearch/Mask2Former
(pixel_decoder/msdeformattn.py, ops/modules/ms_deform_attn.py, transformer_decoder/
mask2former_transformer_decoder.py, position_encoding.py, meta_arch/mask_former_head.py,
backbone/swin.py) and detectron2's ResNet (BasicStem, BottleneckBlock, FrozenBatchNorm2d,
stride_in_1x1=False). Its ``state_dict()`` therefore has the official key names and shapes; a
random reference model converted with ``convert_d2_checkpoint`` must give our model the same
outputs. Dimensions are tiny (D = 32, 2 heads, 1 encoder / 3 decoder layers).
"""
import copy
import math
import os.path as osp
import pickle
from typing import Dict

import mmdet
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import m2f_mm.models.detector  # noqa: F401  registers M2FDetector / M2FHead / ...
import m2f_mm.models.head  # noqa: F401
from m2f_mm.checkpoints import convert_mmdet_to_m2f
from m2f_mm.checkpoints_d2 import (CheckpointFormatError, CheckpointMismatchError, convert_d2_checkpoint,
                                   extract_d2_weights, load_d2_checkpoint, to_d2_layout)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OUR_CFG = osp.join(REPO, 'configs', '_base_', 'models', 'm2f_r50.py')
MMDET_CFG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former',
                     'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py')
D, HEADS, POINTS, ENC_LAYERS, DEC_LAYERS, QUERIES = 32, 2, 2, 1, 3, 6
ENC_FFN, DEC_FFN = 24, 40
NUM_THINGS, NUM_STUFF = 3, 2
R50_CHANNELS = [256, 512, 1024, 2048]


# ============================================================================ detectron2 reference
class D2Conv2d(nn.Conv2d):
    """detectron2.layers.Conv2d: conv -> norm -> activation, the norm a child named ``norm``."""

    def __init__(self, *args, norm=None, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x):
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.norm is not None:
            x = self.norm(x)
        return self.activation(x) if self.activation is not None else x


class FrozenBatchNorm2d(nn.Module):
    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer('weight', torch.ones(num_features))
        self.register_buffer('bias', torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_features))
        self.register_buffer('running_var', torch.ones(num_features) - eps)

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        bias = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)


class BasicStem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = D2Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False, norm=FrozenBatchNorm2d(64))

    def forward(self, x):
        return F.max_pool2d(F.relu_(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class BottleneckBlock(nn.Module):
    def __init__(self, in_channels, out_channels, *, bottleneck_channels, stride=1, stride_in_1x1=False):
        super().__init__()
        self.shortcut = (D2Conv2d(in_channels, out_channels, 1, stride=stride, bias=False,
                                  norm=FrozenBatchNorm2d(out_channels)) if in_channels != out_channels else None)
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = D2Conv2d(in_channels, bottleneck_channels, 1, stride=stride_1x1, bias=False,
                              norm=FrozenBatchNorm2d(bottleneck_channels))
        self.conv2 = D2Conv2d(bottleneck_channels, bottleneck_channels, 3, stride=stride_3x3, padding=1, bias=False,
                              norm=FrozenBatchNorm2d(bottleneck_channels))
        self.conv3 = D2Conv2d(bottleneck_channels, out_channels, 1, bias=False, norm=FrozenBatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        return F.relu_(out + (self.shortcut(x) if self.shortcut is not None else x))


class D2ResNet50(nn.Module):
    """detectron2 build_resnet_backbone, depth 50, STRIDE_IN_1X1 False (Mask2Former's setting)."""

    def __init__(self):
        super().__init__()
        self.stem = BasicStem()
        in_channels, out_channels, bottleneck = 64, 256, 64
        for idx, blocks in enumerate([3, 4, 6, 3]):
            stage = nn.Sequential(*[
                BottleneckBlock(in_channels if b == 0 else out_channels, out_channels, bottleneck_channels=bottleneck,
                                stride=(1 if idx == 0 else 2) if b == 0 else 1) for b in range(blocks)])
            self.add_module(f'res{idx + 2}', stage)
            in_channels, out_channels, bottleneck = out_channels, out_channels * 2, bottleneck * 2

    def forward(self, x):
        x = self.stem(x)
        outs = {}
        for name in ('res2', 'res3', 'res4', 'res5'):
            x = getattr(self, name)(x)
            outs[name] = x
        return outs


class PositionEmbeddingSine(nn.Module):
    def __init__(self, num_pos_feats, temperature=10000, normalize=True):
        super().__init__()
        self.num_pos_feats, self.temperature = num_pos_feats, temperature
        self.normalize, self.scale = normalize, 2 * math.pi

    def forward(self, x):
        mask = torch.zeros((x.size(0), x.size(2), x.size(3)), device=x.device, dtype=torch.bool)
        not_mask = ~mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        eps = 1e-6
        y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
        x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=x.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class MSDeformAttn(nn.Module):
    def __init__(self, d_model, n_levels, n_heads, n_points):
        super().__init__()
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)

    def forward(self, query, reference_points, input_flatten, input_spatial_shapes, input_level_start_index):
        n, len_q, _ = query.shape
        _, len_in, _ = input_flatten.shape
        value = self.value_proj(input_flatten).view(n, len_in, self.n_heads, self.d_model // self.n_heads)
        sampling_offsets = self.sampling_offsets(query).view(n, len_q, self.n_heads, self.n_levels, self.n_points, 2)
        attention_weights = self.attention_weights(query).view(n, len_q, self.n_heads, self.n_levels * self.n_points)
        attention_weights = F.softmax(attention_weights, -1).view(n, len_q, self.n_heads, self.n_levels, self.n_points)
        offset_normalizer = torch.stack([input_spatial_shapes[..., 1], input_spatial_shapes[..., 0]], -1)
        sampling_locations = reference_points[:, :, None, :, None, :] \
            + sampling_offsets / offset_normalizer[None, None, None, :, None, :]
        # the CPU core of MSDeformAttnFunction (detectron2's ms_deform_attn_core_pytorch is the same)
        output = multi_scale_deformable_attn_pytorch(value, input_spatial_shapes, sampling_locations, attention_weights)
        return self.output_proj(output)


class MSDeformAttnTransformerEncoderLayer(nn.Module):
    def __init__(self, d_model, d_ffn, n_levels, n_heads, n_points):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src, pos, reference_points, spatial_shapes, level_start_index):
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, spatial_shapes, level_start_index))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class MSDeformAttnTransformerEncoder(nn.Module):
    def __init__(self, layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])

    @staticmethod
    def get_reference_points(spatial_shapes, valid_ratios):
        ref_list = []
        for lvl, (h, w) in enumerate(spatial_shapes):
            ref_y, ref_x = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, dtype=torch.float32),
                                          torch.linspace(0.5, w - 0.5, w, dtype=torch.float32), indexing='ij')
            ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
            ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
            ref_list.append(torch.stack((ref_x, ref_y), -1))
        reference_points = torch.cat(ref_list, 1)
        return reference_points[:, :, None] * valid_ratios[:, None]

    def forward(self, src, spatial_shapes, level_start_index, valid_ratios, pos):
        reference_points = self.get_reference_points(spatial_shapes, valid_ratios)
        for layer in self.layers:
            src = layer(src, pos, reference_points, spatial_shapes, level_start_index)
        return src


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    def __init__(self, d_model, nhead, num_encoder_layers, dim_feedforward, num_feature_levels, enc_n_points):
        super().__init__()
        layer = MSDeformAttnTransformerEncoderLayer(d_model, dim_feedforward, num_feature_levels, nhead, enc_n_points)
        self.encoder = MSDeformAttnTransformerEncoder(layer, num_encoder_layers)
        self.level_embed = nn.Parameter(torch.randn(num_feature_levels, d_model))

    def forward(self, srcs, pos_embeds):
        src_flatten, lvl_pos, shapes = [], [], []
        for lvl, (src, pos) in enumerate(zip(srcs, pos_embeds)):
            bs, c, h, w = src.shape
            shapes.append((h, w))
            src_flatten.append(src.flatten(2).transpose(1, 2))
            lvl_pos.append(pos.flatten(2).transpose(1, 2) + self.level_embed[lvl].view(1, 1, -1))
        src_flatten = torch.cat(src_flatten, 1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long)
        level_start_index = torch.cat((spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1]))
        valid_ratios = torch.ones(src_flatten.shape[0], len(srcs), 2)
        memory = self.encoder(src_flatten, spatial_shapes, level_start_index, valid_ratios, torch.cat(lvl_pos, 1))
        return memory, spatial_shapes, level_start_index


class MSDeformAttnPixelDecoder(nn.Module):
    """in_channels res2..res5; encoder on res3..res5; one FPN level (common stride 4)."""

    def __init__(self, in_channels, conv_dim, mask_dim, nheads, enc_layers, dim_ffn, n_points):
        super().__init__()
        self.in_features = ['res2', 'res3', 'res4', 'res5']
        self.transformer_in_features = ['res3', 'res4', 'res5']
        transformer_in_channels = in_channels[1:]
        self.input_proj = nn.ModuleList([  # res5 first
            nn.Sequential(nn.Conv2d(c, conv_dim, kernel_size=1), nn.GroupNorm(32, conv_dim))
            for c in transformer_in_channels[::-1]])
        self.transformer = MSDeformAttnTransformerEncoderOnly(conv_dim, nheads, enc_layers, dim_ffn, 3, n_points)
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        self.mask_features = D2Conv2d(conv_dim, mask_dim, kernel_size=1, stride=1, padding=0)
        self.num_fpn_levels = 1
        lateral_convs, output_convs = [], []
        for idx, c in enumerate(in_channels[:self.num_fpn_levels]):
            lateral = D2Conv2d(c, conv_dim, kernel_size=1, bias=False, norm=nn.GroupNorm(32, conv_dim))
            output = D2Conv2d(conv_dim, conv_dim, kernel_size=3, stride=1, padding=1, bias=False,
                              norm=nn.GroupNorm(32, conv_dim), activation=F.relu)
            self.add_module(f'adapter_{idx + 1}', lateral)
            self.add_module(f'layer_{idx + 1}', output)
            lateral_convs.append(lateral)
            output_convs.append(output)
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]

    def forward_features(self, features):
        srcs, pos = [], []
        for idx, f in enumerate(self.transformer_in_features[::-1]):
            x = features[f].float()
            srcs.append(self.input_proj[idx](x))
            pos.append(self.pe_layer(x))
        y, spatial_shapes, level_start_index = self.transformer(srcs, pos)
        bs = y.shape[0]
        sizes = [int(h * w) for h, w in spatial_shapes]
        out = [z.transpose(1, 2).view(bs, -1, int(h), int(w))
               for z, (h, w) in zip(torch.split(y, sizes, dim=1), spatial_shapes)]
        for idx, f in enumerate(self.in_features[:self.num_fpn_levels][::-1]):
            cur_fpn = self.lateral_convs[idx](features[f].float())
            y = cur_fpn + F.interpolate(out[-1], size=cur_fpn.shape[-2:], mode='bilinear', align_corners=False)
            out.append(self.output_convs[idx](y))
        return self.mask_features(out[-1]), out[0], out[:3]


class SelfAttentionLayer(nn.Module):
    def __init__(self, d_model, nhead):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt, query_pos):
        q = k = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, k, value=tgt)[0])


class CrossAttentionLayer(nn.Module):
    def __init__(self, d_model, nhead):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt, memory, memory_mask, pos, query_pos):
        tgt2 = self.multihead_attn(query=tgt + query_pos, key=memory + pos, value=memory, attn_mask=memory_mask)[0]
        return self.norm(tgt + tgt2)


class FFNLayer(nn.Module):
    def __init__(self, d_model, dim_feedforward):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt):
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class MultiScaleMaskedTransformerDecoder(nn.Module):
    def __init__(self, in_channels, num_classes, hidden_dim, num_queries, nheads, dim_feedforward, dec_layers,
                 mask_dim, enforce_input_project=False):
        super().__init__()
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.num_heads, self.num_layers = nheads, dec_layers
        self.transformer_self_attention_layers = nn.ModuleList()
        self.transformer_cross_attention_layers = nn.ModuleList()
        self.transformer_ffn_layers = nn.ModuleList()
        for _ in range(dec_layers):
            self.transformer_self_attention_layers.append(SelfAttentionLayer(hidden_dim, nheads))
            self.transformer_cross_attention_layers.append(CrossAttentionLayer(hidden_dim, nheads))
            self.transformer_ffn_layers.append(FFNLayer(hidden_dim, dim_feedforward))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.num_queries = num_queries
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.num_feature_levels = 3
        self.level_embed = nn.Embedding(self.num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(self.num_feature_levels):
            if in_channels != hidden_dim or enforce_input_project:
                self.input_proj.append(D2Conv2d(in_channels, hidden_dim, kernel_size=1))
            else:
                self.input_proj.append(nn.Sequential())
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)

    def forward(self, x, mask_features):
        src, pos, size_list = [], [], []
        for i in range(self.num_feature_levels):
            size_list.append(x[i].shape[-2:])
            pos.append(self.pe_layer(x[i]).flatten(2).permute(2, 0, 1))
            src.append((self.input_proj[i](x[i]).flatten(2)
                        + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1))
        bs = src[0].shape[1]
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, bs, 1)
        classes, masks = [], []
        cls, mask, attn_mask = self.forward_prediction_heads(output, mask_features, size_list[0])
        classes.append(cls)
        masks.append(mask)
        for i in range(self.num_layers):
            level_index = i % self.num_feature_levels
            attn_mask[torch.where(attn_mask.sum(-1) == attn_mask.shape[-1])] = False
            output = self.transformer_cross_attention_layers[i](output, src[level_index], attn_mask,
                                                                pos[level_index], query_embed)
            output = self.transformer_self_attention_layers[i](output, query_embed)
            output = self.transformer_ffn_layers[i](output)
            cls, mask, attn_mask = self.forward_prediction_heads(
                output, mask_features, size_list[(i + 1) % self.num_feature_levels])
            classes.append(cls)
            masks.append(mask)
        return classes, masks

    def forward_prediction_heads(self, output, mask_features, attn_mask_target_size):
        decoder_output = self.decoder_norm(output).transpose(0, 1)
        outputs_class = self.class_embed(decoder_output)
        outputs_mask = torch.einsum('bqc,bchw->bqhw', self.mask_embed(decoder_output), mask_features)
        attn_mask = F.interpolate(outputs_mask, size=attn_mask_target_size, mode='bilinear', align_corners=False)
        attn_mask = (attn_mask.sigmoid().flatten(2).unsqueeze(1).repeat(1, self.num_heads, 1, 1).flatten(0, 1)
                     < 0.5).bool().detach()
        return outputs_class, outputs_mask, attn_mask


class MaskFormerHead(nn.Module):
    def __init__(self, in_channels, num_classes, enforce_input_project=False):
        super().__init__()
        self.pixel_decoder = MSDeformAttnPixelDecoder(in_channels, D, D, HEADS, ENC_LAYERS, ENC_FFN, POINTS)
        self.predictor = MultiScaleMaskedTransformerDecoder(D, num_classes, D, QUERIES, HEADS, DEC_FFN, DEC_LAYERS, D,
                                                            enforce_input_project)

    def forward(self, features):
        mask_features, _, multi_scale = self.pixel_decoder.forward_features(features)
        return self.predictor(multi_scale, mask_features)


class SetCriterion(nn.Module):
    def __init__(self, num_classes, eos_coef=0.1):
        super().__init__()
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer('empty_weight', empty_weight)


class D2MaskFormer(nn.Module):
    """meta_arch MaskFormer: backbone + sem_seg_head + criterion (pixel_mean/std are not persistent)."""

    def __init__(self, num_classes=NUM_THINGS + NUM_STUFF, enforce_input_project=False):
        super().__init__()
        self.backbone = D2ResNet50()
        self.sem_seg_head = MaskFormerHead(R50_CHANNELS, num_classes, enforce_input_project)
        self.criterion = SetCriterion(num_classes)

    def forward(self, images):
        return self.sem_seg_head(self.backbone(images))


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-degenerate random values in every float parameter / buffer (positive BN variances)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if not tensor.is_floating_point() or name.endswith('empty_weight'):
                continue
            noise = torch.randn(tensor.shape, generator=gen)
            if name.endswith('running_var'):
                tensor.copy_(noise.abs() + 0.5)
            elif tensor.dim() > 1:
                fan_in = tensor[0].numel()
                tensor.copy_(noise / math.sqrt(fan_in))
            else:
                tensor.copy_(0.1 * noise + (1.0 if name.endswith('norm.weight') else 0.0))
    return module


# ============================================================================ our models
def tiny_cfg(depth: int = 50, num_things: int = NUM_THINGS, num_stuff: int = NUM_STUFF, queries: int = QUERIES,
             enforce_input_project: bool = False) -> Config:
    cfg = Config.fromfile(OUR_CFG)
    m = cfg.model
    m.backbone.update(depth=depth, init_cfg=None)
    in_channels = R50_CHANNELS if depth >= 50 else [64, 128, 256, 512]
    head = m.panoptic_head
    head.update(in_channels=in_channels, feat_channels=D, out_channels=D, num_queries=queries,
                num_things_classes=num_things, num_stuff_classes=num_stuff,
                enforce_decoder_input_project=enforce_input_project,
                positional_encoding=dict(num_feats=D // 2, normalize=True))
    head.criterion.num_classes = num_things + num_stuff
    head.pixel_decoder.positional_encoding = dict(num_feats=D // 2, normalize=True)
    head.pixel_decoder.encoder.num_layers = ENC_LAYERS
    head.pixel_decoder.encoder.layer_cfg.update(embed_dims=D, num_heads=HEADS, num_points=POINTS,
                                                feedforward_channels=ENC_FFN)
    head.transformer_decoder.num_layers = DEC_LAYERS
    head.transformer_decoder.layer_cfg.update(embed_dims=D, num_heads=HEADS, feedforward_channels=DEC_FFN)
    m.panoptic_fusion_head.update(num_things_classes=num_things, num_stuff_classes=num_stuff)
    return cfg


def build_ours(**kwargs) -> nn.Module:
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(tiny_cfg(**kwargs).model)
    return model.eval()


def our_outputs(model, images):
    with torch.no_grad():
        return model._forward(images)


@pytest.fixture(scope='module')
def d2_model():
    torch.manual_seed(0)
    return randomize_(D2MaskFormer(), seed=1).eval()


@pytest.fixture(scope='module')
def ours():
    return build_ours()


@pytest.fixture(scope='module')
def images():
    return torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))


def numpy_state(module_or_state) -> Dict[str, np.ndarray]:
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def write_pkl(path, weights, protocol=pickle.HIGHEST_PROTOCOL):
    with open(path, 'wb') as f:
        pickle.dump({'model': weights, '__author__': 'test', 'matching_heuristics': True}, f, protocol=protocol)
    return str(path)


# ============================================================================ tests: official layout
def test_reference_state_dict_has_the_official_key_names(d2_model):
    keys = set(d2_model.state_dict())
    for key in ['backbone.stem.conv1.weight', 'backbone.stem.conv1.norm.running_var',
                'backbone.res2.0.shortcut.norm.weight', 'backbone.res5.2.conv3.norm.bias',
                'sem_seg_head.pixel_decoder.input_proj.0.0.weight', 'sem_seg_head.pixel_decoder.input_proj.2.1.bias',
                'sem_seg_head.pixel_decoder.transformer.level_embed',
                'sem_seg_head.pixel_decoder.transformer.encoder.layers.0.self_attn.sampling_offsets.weight',
                'sem_seg_head.pixel_decoder.transformer.encoder.layers.0.linear2.bias',
                'sem_seg_head.pixel_decoder.adapter_1.weight', 'sem_seg_head.pixel_decoder.adapter_1.norm.weight',
                'sem_seg_head.pixel_decoder.layer_1.norm.bias', 'sem_seg_head.pixel_decoder.mask_features.bias',
                'sem_seg_head.predictor.transformer_cross_attention_layers.2.multihead_attn.in_proj_weight',
                'sem_seg_head.predictor.transformer_self_attention_layers.0.self_attn.out_proj.bias',
                'sem_seg_head.predictor.transformer_ffn_layers.1.norm.weight',
                'sem_seg_head.predictor.decoder_norm.weight', 'sem_seg_head.predictor.query_feat.weight',
                'sem_seg_head.predictor.level_embed.weight', 'sem_seg_head.predictor.mask_embed.layers.2.bias',
                'criterion.empty_weight']:
        assert key in keys, key
    # res5 (2048 channels) is input_proj[0], as in detectron2's transformer_in_channels[::-1]
    assert d2_model.state_dict()['sem_seg_head.pixel_decoder.input_proj.0.0.weight'].shape[1] == 2048
    assert not any('predictor.input_proj' in k for k in keys)  # widths equal -> nn.Sequential(), no weights


def test_official_model_outputs_are_reproduced(d2_model, ours, images):
    """The point of the converter: a detectron2 model's weights give our model the same outputs."""
    result = convert_d2_checkpoint(numpy_state(d2_model), target_state=ours.state_dict())
    assert result.unmapped_source_keys == [] and result.missing_target_keys == []
    assert result.dropped_source_keys == ['criterion.empty_weight']
    ours.load_state_dict(result.state_dict, strict=True)
    with torch.no_grad():
        ref_cls, ref_mask = d2_model(images)
    cls_sets, mask_sets = our_outputs(ours, images)
    assert len(cls_sets) == len(ref_cls) == DEC_LAYERS + 1
    for i, (a, b, c, d) in enumerate(zip(cls_sets, ref_cls, mask_sets, ref_mask)):
        scale = max(1.0, float(b.abs().max()), float(d.abs().max()))
        assert torch.allclose(a, b, atol=1e-4 * scale, rtol=0), f'class logits, set {i}: {(a - b).abs().max()}'
        assert torch.allclose(c, d, atol=1e-4 * scale, rtol=0), f'mask logits, set {i}: {(c - d).abs().max()}'
    # also: the backbone alone (stride in the 3x3 conv, FrozenBN -> eval BN)
    with torch.no_grad():
        ref_feats = d2_model.backbone(images)
        our_feats = ours.backbone(images)
    for ref, got in zip(ref_feats.values(), our_feats):
        assert torch.allclose(ref, got, atol=1e-4 * max(1.0, float(ref.abs().max())), rtol=0)


def test_every_source_tensor_lands_in_its_own_target(d2_model, ours):
    """Head tensors filled with distinct values: the mapping is a bijection onto the model and the
    detectron2 -> m2f_mm pairs are the documented ones."""
    state = {k: v for k, v in numpy_state(d2_model).items()}
    offset = 0
    for key in sorted(state):
        if key.startswith('sem_seg_head.'):
            n = state[key].size
            state[key] = (np.arange(n, dtype=np.float64) + offset).reshape(state[key].shape).astype(np.float32)
            offset += n
    assert offset < 2 ** 24  # exactly representable in float32
    result = convert_d2_checkpoint(state, target_state=ours.state_dict())
    first_value = {float(v.reshape(-1)[0]): k for k, v in state.items() if k.startswith('sem_seg_head.')}
    pairs = {}
    for dst, value in result.state_dict.items():
        if dst.startswith('panoptic_head.'):
            src = first_value[float(value.reshape(-1)[0])]
            assert np.array_equal(value.numpy(), state[src]), dst
            pairs[dst] = src
    assert sorted(pairs.values()) == sorted(k for k in state if k.startswith('sem_seg_head.'))  # bijection
    pd, pr = 'sem_seg_head.pixel_decoder.', 'sem_seg_head.predictor.'
    expected = {
        'pixel_decoder.input_projs.0.conv.weight': pd + 'input_proj.0.0.weight',  # stride 32 first
        'pixel_decoder.input_projs.2.gn.bias': pd + 'input_proj.2.1.bias',
        'pixel_decoder.level_embed.weight': pd + 'transformer.level_embed',
        'pixel_decoder.encoder.layers.0.self_attn.sampling_offsets.weight':
            pd + 'transformer.encoder.layers.0.self_attn.sampling_offsets.weight',
        'pixel_decoder.encoder.layers.0.norm2.bias': pd + 'transformer.encoder.layers.0.norm2.bias',
        'pixel_decoder.lateral_convs.0.conv.weight': pd + 'adapter_1.weight',
        'pixel_decoder.lateral_convs.0.gn.weight': pd + 'adapter_1.norm.weight',
        'pixel_decoder.output_convs.0.gn.bias': pd + 'layer_1.norm.bias',
        'pixel_decoder.mask_features.weight': pd + 'mask_features.weight',
        'transformer_decoder.layers.2.cross_attn.in_proj_weight':
            pr + 'transformer_cross_attention_layers.2.multihead_attn.in_proj_weight',
        'transformer_decoder.layers.2.norm1.weight': pr + 'transformer_cross_attention_layers.2.norm.weight',
        'transformer_decoder.layers.1.self_attn.out_proj.bias':
            pr + 'transformer_self_attention_layers.1.self_attn.out_proj.bias',
        'transformer_decoder.layers.1.norm2.bias': pr + 'transformer_self_attention_layers.1.norm.bias',
        'transformer_decoder.layers.0.linear1.weight': pr + 'transformer_ffn_layers.0.linear1.weight',
        'transformer_decoder.layers.0.norm3.weight': pr + 'transformer_ffn_layers.0.norm.weight',
        'transformer_decoder.decoder_norm.weight': pr + 'decoder_norm.weight',
        'query_feat.weight': pr + 'query_feat.weight', 'query_embed.weight': pr + 'query_embed.weight',
        'level_embed.weight': pr + 'level_embed.weight', 'class_embed.bias': pr + 'class_embed.bias',
        'mask_embed.layers.1.weight': pr + 'mask_embed.layers.1.weight',
    }
    for dst, src in expected.items():
        assert pairs['panoptic_head.' + dst] == src, dst


def test_in_proj_packing_is_q_k_v(ours):
    """Our attention splits in_proj_weight rows as nn.MultiheadAttention does: [q; k; v]."""
    attn = ours.panoptic_head.transformer_decoder.layers[0].cross_attn
    mha = nn.MultiheadAttention(D, HEADS, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.in_proj_weight)
        mha.in_proj_bias.copy_(torch.randn(3 * D))
        attn.in_proj_bias.copy_(mha.in_proj_bias)
        mha.out_proj.load_state_dict(attn.out_proj.state_dict())
        q, k, v = torch.randn(3, 2, 5, D).unbind(0)
        assert torch.allclose(attn(q, k, v), mha(q, k, v, need_weights=False)[0], atol=1e-5)


# ============================================================================ tests: round trips
def test_round_trip_head_and_resnet_is_identity(ours):
    state = ours.state_dict()
    d2 = to_d2_layout(state)
    assert 'criterion.empty_weight' in d2 and not any(k.endswith('num_batches_tracked') for k in d2)
    back = convert_d2_checkpoint(numpy_state(d2), target_state=state)
    assert list(back.state_dict) == list(state)
    for key, value in state.items():
        assert torch.equal(back.state_dict[key], value), key


def test_round_trip_resnet18_and_deep_stem():
    from mmdet.models.backbones import ResNet
    head = {k: v for k, v in to_d2_layout(build_ours(depth=18).state_dict()).items() if not k.startswith('backbone.')}
    for deep_stem in (False, True):  # deep stem = ResNetV1c (detectron2 DeepLab stem)
        net = ResNet(depth=18, deep_stem=deep_stem)
        state = {'backbone.' + k: v for k, v in net.state_dict().items()}
        d2 = to_d2_layout(state, head_prefix='panoptic_head.')
        if deep_stem:
            assert 'backbone.stem.conv3.norm.running_mean' in d2
        else:
            assert 'backbone.res2.0.conv2.norm.weight' in d2 and 'backbone.res3.0.shortcut.weight' in d2
        result = convert_d2_checkpoint({**head, **d2})
        for key, value in state.items():
            assert torch.equal(result.state_dict[key], value), key


def official_swin_shapes(embed_dim, depths, num_heads, window, mlp_ratio=4):
    """Key -> shape of the official SwinTransformer (Mask2Former backbone/swin.py) under ``backbone.``."""
    shapes = {'patch_embed.proj.weight': (embed_dim, 3, 4, 4), 'patch_embed.proj.bias': (embed_dim,),
              'patch_embed.norm.weight': (embed_dim,), 'patch_embed.norm.bias': (embed_dim,)}
    for i, (depth, heads) in enumerate(zip(depths, num_heads)):
        dim = embed_dim * 2 ** i
        for j in range(depth):
            b = f'layers.{i}.blocks.{j}.'
            shapes.update({b + 'norm1.weight': (dim,), b + 'norm1.bias': (dim,),
                           b + 'attn.relative_position_bias_table': ((2 * window - 1) ** 2, heads),
                           b + 'attn.relative_position_index': (window ** 2, window ** 2),
                           b + 'attn.qkv.weight': (3 * dim, dim), b + 'attn.qkv.bias': (3 * dim,),
                           b + 'attn.proj.weight': (dim, dim), b + 'attn.proj.bias': (dim,),
                           b + 'norm2.weight': (dim,), b + 'norm2.bias': (dim,),
                           b + 'mlp.fc1.weight': (mlp_ratio * dim, dim), b + 'mlp.fc1.bias': (mlp_ratio * dim,),
                           b + 'mlp.fc2.weight': (dim, mlp_ratio * dim), b + 'mlp.fc2.bias': (dim,)})
        if i < len(depths) - 1:
            shapes.update({f'layers.{i}.downsample.reduction.weight': (2 * dim, 4 * dim),
                           f'layers.{i}.downsample.norm.weight': (4 * dim,),
                           f'layers.{i}.downsample.norm.bias': (4 * dim,)})
        shapes.update({f'norm{i}.weight': (dim,), f'norm{i}.bias': (dim,)})
    return {'backbone.' + k: v for k, v in shapes.items()}


def official_relative_position_index(window):
    coords = torch.stack(torch.meshgrid([torch.arange(window), torch.arange(window)], indexing='ij'))
    flat = torch.flatten(coords, 1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


@pytest.fixture(scope='module')
def tiny_swin():
    from mmdet.models.backbones import SwinTransformer
    torch.manual_seed(3)
    swin = SwinTransformer(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=7,
                           out_indices=(0, 1, 2, 3))
    randomize_(swin, seed=4).eval()  # mmdet's SwinTransformer.train() returns None
    return swin


def test_swin_official_layout_round_trip_and_patch_merging(tiny_swin, ours):
    state = {'backbone.' + k: v for k, v in tiny_swin.state_dict().items()}
    head = {k: v for k, v in ours.state_dict().items() if k.startswith('panoptic_head.')}
    d2 = to_d2_layout({**state, **head})
    expected = official_swin_shapes(32, [2, 2, 2, 2], [1, 2, 4, 8], 7)
    assert {k: tuple(v.shape) for k, v in d2.items() if k.startswith('backbone.')} == expected
    # the buffer detectron2 saves equals the one mmdet computes
    assert torch.equal(d2['backbone.layers.1.blocks.1.attn.relative_position_index'],
                       official_relative_position_index(7))
    # identity round trip (incl. the PatchMerging channel re-ordering)
    target = {**state, **head}
    back = convert_d2_checkpoint(numpy_state(d2), target_state=target)
    for key, value in target.items():
        assert torch.equal(back.state_dict[key], value), key
    # functional: official PatchMerging (x0, x1, x2, x3 = (0,0), (1,0), (0,1), (1,1)) with the
    # detectron2 weights == mmdet's nn.Unfold PatchMerging with the converted ones
    merge = tiny_swin.stages[0].downsample
    x = torch.randn(2, 8 * 6, 32)
    xs = x.view(2, 8, 6, 32)
    cat = torch.cat([xs[:, 0::2, 0::2], xs[:, 1::2, 0::2], xs[:, 0::2, 1::2], xs[:, 1::2, 1::2]], -1).view(2, -1, 128)
    official = F.linear(F.layer_norm(cat, (128,), d2['backbone.layers.0.downsample.norm.weight'],
                                     d2['backbone.layers.0.downsample.norm.bias']),
                        d2['backbone.layers.0.downsample.reduction.weight'])
    with torch.no_grad():
        got, _ = merge(x, (8, 6))
    assert torch.allclose(got, official, atol=1e-5)


# ============================================================================ tests: vs the mmdet path
def test_same_outputs_as_the_mmdet_converter_path(tmp_path, images):
    """mmdet Mask2Former weights -> (a) convert_mmdet_to_m2f, (b) that -> detectron2 layout -> .pkl ->
    load_d2_checkpoint -> convert_d2_checkpoint. Both load strictly and give identical outputs."""
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref_cfg = Config.fromfile(MMDET_CFG)
        ref_cfg.model.backbone.update(depth=18, init_cfg=None)
        head = ref_cfg.model.panoptic_head
        head.update(in_channels=[64, 128, 256, 512], feat_channels=D, out_channels=D, num_queries=QUERIES,
                    positional_encoding=dict(num_feats=D // 2, normalize=True))
        head.pixel_decoder.positional_encoding = dict(num_feats=D // 2, normalize=True)
        head.pixel_decoder.encoder.num_layers = ENC_LAYERS
        enc = head.pixel_decoder.encoder.layer_cfg
        enc.self_attn_cfg.update(embed_dims=D, num_heads=HEADS, num_points=POINTS)
        enc.ffn_cfg.update(embed_dims=D, feedforward_channels=ENC_FFN)
        head.transformer_decoder.num_layers = DEC_LAYERS
        dec = head.transformer_decoder.layer_cfg
        dec.self_attn_cfg.update(embed_dims=D, num_heads=HEADS)
        dec.cross_attn_cfg.update(embed_dims=D, num_heads=HEADS)
        dec.ffn_cfg.update(embed_dims=D, feedforward_channels=DEC_FFN)
        ref = randomize_(MODELS.build(ref_cfg.model), seed=5)
    via_mmdet, unmapped = convert_mmdet_to_m2f(ref.state_dict())
    assert unmapped == []
    ours_a = build_ours(depth=18, num_things=80, num_stuff=53)
    ours_a.load_state_dict(via_mmdet, strict=True)

    path = write_pkl(tmp_path / 'model_final.pkl', numpy_state(to_d2_layout(via_mmdet)))
    ours_b = build_ours(depth=18, num_things=80, num_stuff=53)
    weights = extract_d2_weights(load_d2_checkpoint(path), path)
    result = convert_d2_checkpoint(weights, target_state=ours_b.state_dict(), source=path)
    ours_b.load_state_dict(result.state_dict, strict=True)
    for a, b in zip(ours_a.state_dict().values(), ours_b.state_dict().values()):
        assert torch.equal(a, b)
    out_a, out_b = our_outputs(ours_a, images), our_outputs(ours_b, images)
    for set_a, set_b in zip(out_a[0] + out_a[1], out_b[0] + out_b[1]):
        assert torch.equal(set_a, set_b)


# ============================================================================ tests: bad inputs
def test_not_a_checkpoint_and_truncated_files(tmp_path, d2_model):
    not_dict = tmp_path / 'list.pkl'
    not_dict.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointFormatError, match=r'list\.pkl.*found a list'):
        extract_d2_weights(load_d2_checkpoint(str(not_dict)), str(not_dict))

    backbone_only = write_pkl(tmp_path / 'R-50.pkl', {'stem.conv1.weight': np.zeros((64, 3, 7, 7), np.float32)})
    with pytest.raises(CheckpointFormatError, match=r'R-50\.pkl: not a Mask2Former.*sem_seg_head.*stem\.conv1'):
        extract_d2_weights(load_d2_checkpoint(backbone_only), backbone_only)

    with pytest.raises(CheckpointFormatError, match='mmdet_to_m2f'):
        extract_d2_weights({'state_dict': {'panoptic_head.cls_embed.weight': torch.zeros(1)}, 'meta': {}}, 'x.pth')

    good = write_pkl(tmp_path / 'model_final.pkl', numpy_state(d2_model), protocol=2)  # py2-era protocol
    assert any(k.startswith('sem_seg_head.') for k in extract_d2_weights(load_d2_checkpoint(good)))
    data = open(good, 'rb').read()
    truncated = tmp_path / 'model_final_truncated.pkl'
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match=r'model_final_truncated\.pkl.*truncated'):
        load_d2_checkpoint(str(truncated))

    import datetime
    unsafe = tmp_path / 'unsafe.pkl'
    unsafe.write_bytes(pickle.dumps({'model': {'sem_seg_head.x': datetime.datetime(2020, 1, 1)}}))
    with pytest.raises(CheckpointFormatError, match='trust-pickle'):
        load_d2_checkpoint(str(unsafe))
    assert load_d2_checkpoint(str(unsafe), trust_pickle=True)['model']['sem_seg_head.x'].year == 2020

    with pytest.raises(CheckpointFormatError, match='no "sem_seg_head'):
        convert_d2_checkpoint({'backbone.stem.conv1.weight': np.zeros(1)})


def test_class_and_query_count_mismatch_messages(d2_model):
    state = numpy_state(d2_model)  # 5 classes, 6 queries
    other_classes = build_ours(num_things=80, num_stuff=53).state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        convert_d2_checkpoint(state, target_state=other_classes, source='model_final_x.pkl')
    msg = str(err.value)
    assert 'model_final_x.pkl' in msg and '5 classes' in msg and '133' in msg
    assert 'model.panoptic_head.num_things_classes' in msg and 'things + stuff = 5' in msg

    other_queries = build_ours(queries=QUERIES + 4).state_dict()
    with pytest.raises(CheckpointMismatchError,
                       match=rf'{QUERIES} queries.*has {QUERIES + 4}.*model\.panoptic_head\.num_queries={QUERIES}'):
        convert_d2_checkpoint(state, target_state=other_queries)

    seg_target = {k.replace('panoptic_head.', 'decode_head.'): v for k, v in other_classes.items()}
    with pytest.raises(CheckpointMismatchError, match=r'model\.decode_head\.num_classes=5'):
        convert_d2_checkpoint(state, target_state=seg_target)


def test_shape_mismatch_names_both_keys_and_shapes(d2_model, ours):
    state = numpy_state(d2_model)
    key = 'sem_seg_head.predictor.transformer_ffn_layers.1.linear1.weight'
    state[key] = np.zeros((DEC_FFN + 1, D), np.float32)
    with pytest.raises(CheckpointMismatchError) as err:
        convert_d2_checkpoint(state, target_state=ours.state_dict())
    assert f'{key} [{DEC_FFN + 1}, {D}] -> panoptic_head.transformer_decoder.layers.1.linear1.weight [{DEC_FFN}, {D}]' \
        in str(err.value)


def test_missing_and_unmapped_keys_fail_unless_partial(d2_model, ours):
    state = numpy_state(d2_model)
    del state['sem_seg_head.predictor.decoder_norm.bias']
    state['sem_seg_head.predictor.something_new.weight'] = np.zeros(3, np.float32)
    state['extra_top_level'] = np.zeros(1, np.float32)
    target = ours.state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        convert_d2_checkpoint(state, target_state=target)
    msg = str(err.value)
    assert 'panoptic_head.transformer_decoder.decoder_norm.bias' in msg
    assert 'sem_seg_head.predictor.something_new.weight' in msg and '--partial' in msg

    result = convert_d2_checkpoint(state, target_state=target, partial=True)
    assert result.missing_target_keys == ['panoptic_head.transformer_decoder.decoder_norm.bias']
    assert sorted(result.unmapped_source_keys) == ['extra_top_level', 'sem_seg_head.predictor.something_new.weight']
    # without a target nothing fails, unmapped keys are still reported
    assert sorted(convert_d2_checkpoint(state).unmapped_source_keys) == sorted(result.unmapped_source_keys)


def test_backbone_and_depth_mismatches_are_explained(d2_model, ours, tiny_swin):
    state = numpy_state(d2_model)
    swin_target = {'backbone.' + k: v for k, v in tiny_swin.state_dict().items()}
    swin_target.update({k: v for k, v in ours.state_dict().items() if k.startswith('panoptic_head.')})
    with pytest.raises(CheckpointMismatchError, match=r'backbone differs.*ResNet-50'):
        convert_d2_checkpoint(state, target_state=swin_target)
    for key in list(state):
        if '_layers.2.' in key:  # drop the last decoder layer: 2 in the checkpoint, 3 in the config
            del state[key]
    with pytest.raises(CheckpointMismatchError, match=r'2 decoder layers, the config 3.*num_layers=2'):
        convert_d2_checkpoint(state, target_state=ours.state_dict())


def test_decoder_input_projection_mismatch_is_explained(ours):
    torch.manual_seed(0)
    d2 = D2MaskFormer(enforce_input_project=True)
    with pytest.raises(CheckpointMismatchError, match='enforce_decoder_input_project'):
        convert_d2_checkpoint(numpy_state(d2), target_state=ours.state_dict())
    with_proj = build_ours(enforce_input_project=True)
    result = convert_d2_checkpoint(numpy_state(d2), target_state=with_proj.state_dict())
    with_proj.load_state_dict(result.state_dict, strict=True)
    assert torch.equal(with_proj.panoptic_head.input_projs[1].weight,
                       d2.sem_seg_head.predictor.input_proj[1].weight)


# ============================================================================ tests: configs
@pytest.mark.parametrize('config, queries, classes, backbone', [
    ('m2f_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py', 200, 133, 'swin-l'),
    ('m2f_r50_8xb2-lsj-50e_coco.py', 100, 80, 'r50'),
])
def test_configs_have_the_official_architectures(config, queries, classes, backbone):
    """The configs for the official checkpoints build models with the official shapes (Swin-L:
    embed 192, depths 2-2-18-2, heads 6-12-24-48, window 12; detectron2 R50)."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    d2 = to_d2_layout(model.state_dict())
    pr = 'sem_seg_head.predictor.'
    assert tuple(d2[pr + 'query_feat.weight'].shape) == (queries, 256)
    assert tuple(d2[pr + 'class_embed.weight'].shape) == (classes + 1, 256)
    assert len({k.split('.')[3] for k in d2 if k.startswith(pr + 'transformer_ffn_layers.')}) == 9
    assert not any(k.startswith(pr + 'input_proj') for k in d2)
    got = {k: tuple(v.shape) for k, v in d2.items() if k.startswith('backbone.')}
    if backbone == 'swin-l':
        assert got == official_swin_shapes(192, [2, 2, 18, 2], [6, 12, 24, 48], 12)
    else:
        assert got == {'backbone.' + k: tuple(v.shape) for k, v in D2ResNet50().state_dict().items()}
    if cfg.model.test_cfg.get('instance_on') and not cfg.model.test_cfg.get('panoptic_on'):
        assert cfg.model.panoptic_head.num_stuff_classes == 0 and model.panoptic_head.criterion.num_classes == 80


# ============================================================================ tests: CLI
def _cli():
    import importlib.util
    spec = importlib.util.spec_from_file_location('d2_to_m2f', osp.join(REPO, 'tools', 'model_converters',
                                                                       'd2_to_m2f.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli(tmp_path, d2_model, capsys):
    cli = _cli()
    cfg_path = str(tmp_path / 'tiny_cfg.py')
    tiny_cfg().dump(cfg_path)
    src = write_pkl(tmp_path / 'model_final_abc123.pkl', numpy_state(d2_model))
    dst = str(tmp_path / 'converted.pth')

    assert cli.main([src, dst, '--config', cfg_path]) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    model = build_ours()
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert 'CC BY-NC 4.0' in ckpt['meta']['license']
    assert ckpt['meta']['num_classes'] == NUM_THINGS + NUM_STUFF and ckpt['meta']['num_queries'] == QUERIES

    # without a config: no checks, a summary with the counts
    assert cli.main([src, str(tmp_path / 'noconf.pth')]) == 0
    out = capsys.readouterr().out
    assert f'{NUM_THINGS + NUM_STUFF} classes' in out and f'{QUERIES} queries' in out

    # wrong query count: exit 1 with the fix, which then works through --cfg-options
    assert cli.main([src, dst, '--config', cfg_path, '--cfg-options', 'model.panoptic_head.num_queries=9']) == 1
    assert f'model.panoptic_head.num_queries={QUERIES}' in capsys.readouterr().err
    fixed = f'model.panoptic_head.num_queries={QUERIES}'
    assert cli.main([src, dst, '--config', cfg_path, '--cfg-options', fixed]) == 0

    bad = tmp_path / 'broken.pkl'
    bad.write_bytes(open(src, 'rb').read()[:1000])
    assert cli.main([str(bad), dst]) == 2
    assert 'broken.pkl' in capsys.readouterr().err

    # a .pth holding the same dict (tensors) is accepted too
    pth = str(tmp_path / 'model_final.pth')
    torch.save({'model': d2_model.state_dict(), 'iteration': 1}, pth)
    assert cli.main([pth, dst, '--config', cfg_path]) == 0
