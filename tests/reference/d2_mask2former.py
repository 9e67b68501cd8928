"""A minimal re-creation of the official Mask2Former modules (facebookresearch/Mask2Former, detectron2),
with their exact attribute names and forward passes, transcribed from pixel_decoder/msdeformattn.py,
ops/modules/ms_deform_attn.py, transformer_decoder/mask2former_transformer_decoder.py,
position_encoding.py, meta_arch/mask_former_head.py and detectron2's ResNet (BasicStem,
BottleneckBlock, FrozenBatchNorm2d, stride_in_1x1=False). Its ``state_dict()`` therefore has the official
key names and shapes: the reference the detectron2 checkpoint tests convert from. Test-only code.

Dimensions are tiny (D = 32, 2 heads, 1 encoder / 3 decoder layers).
"""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

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
