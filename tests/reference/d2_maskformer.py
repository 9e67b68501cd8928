"""A minimal re-creation of the official MaskFormer modules (facebookresearch/MaskFormer, detectron2),
with their exact attribute names and forward passes, transcribed from heads/pixel_decoder.py
(BasePixelDecoder, TransformerEncoderOnly, TransformerEncoderPixelDecoder), heads/mask_former_head.py,
transformer/transformer.py (post-norm DETR layers) and transformer/transformer_predictor.py. Its
``state_dict()`` therefore has the official key names and shapes: the reference the MaskFormer
checkpoint tests convert from. Test-only code; the backbone is left out (features are inputs).

Shapes: B images, C_l channels of input level l (finest first), D = hidden width, Q queries,
K classes; features are [B, C_l, H_l, W_l]; outputs are lists (one per decoder layer) of class logits
[B, Q, K + 1] and mask logits [B, Q, H_0, W_0].
"""
import copy
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from reference.d2_mask2former import D2Conv2d, PositionEmbeddingSine

IN_CHANNELS = [8, 16, 24, 40]  # res2..res5, tiny
D, HEADS, FFN, DEC_LAYERS, ENC_LAYERS, QUERIES = 32, 2, 48, 2, 2, 5
NUM_CLASSES = 4


def _clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


class TransformerEncoderLayer(nn.Module):
    """DETR's post-norm encoder layer (the only variant the official configs use)."""

    def __init__(self, d_model, nhead, dim_feedforward, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src, pos):
        q = k = src + pos
        src = self.norm1(src + self.dropout1(self.self_attn(q, k, value=src)[0]))
        return self.norm2(src + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(src))))))


class TransformerEncoder(nn.Module):
    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.norm = norm  # a LayerNorm only with PRE_NORM: True

    def forward(self, src, pos):
        for layer in self.layers:
            src = layer(src, pos)
        return self.norm(src) if self.norm is not None else src


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt, memory, pos, query_pos):
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, value=tgt)[0]))
        tgt2 = self.multihead_attn(query=tgt + query_pos, key=memory + pos, value=memory)[0]
        tgt = self.norm2(tgt + self.dropout2(tgt2))
        return self.norm3(tgt + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(tgt))))))


class TransformerDecoder(nn.Module):
    """return_intermediate=True (DEEP_SUPERVISION): the final norm on every layer's output."""

    def __init__(self, decoder_layer, num_layers, norm):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.norm = norm

    def forward(self, tgt, memory, pos, query_pos):
        intermediate = []
        for layer in self.layers:
            tgt = layer(tgt, memory, pos, query_pos)
            intermediate.append(self.norm(tgt))
        return torch.stack(intermediate)


class Transformer(nn.Module):
    def __init__(self, d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, pre_norm=False):
        super().__init__()
        encoder_layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward)
        self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers,
                                          nn.LayerNorm(d_model) if pre_norm else None)
        decoder_layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward)
        self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, nn.LayerNorm(d_model))

    def forward(self, src, query_embed, pos_embed):
        bs = src.shape[0]
        src = src.flatten(2).permute(2, 0, 1)
        pos_embed = pos_embed.flatten(2).permute(2, 0, 1)
        query_embed = query_embed.unsqueeze(1).repeat(1, bs, 1)
        memory = self.encoder(src, pos_embed)
        hs = self.decoder(torch.zeros_like(query_embed), memory, pos_embed, query_embed)
        return hs.transpose(1, 2)  # [layers, B, Q, D]


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


class TransformerPredictor(nn.Module):
    def __init__(self, in_channels, num_classes, hidden_dim=D, num_queries=QUERIES, nheads=HEADS,
                 dim_feedforward=FFN, enc_layers=0, dec_layers=DEC_LAYERS, mask_dim=D, enforce_input_project=False,
                 pre_norm=False, mask_classification=True):
        super().__init__()
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.transformer = Transformer(hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, pre_norm)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        if in_channels != hidden_dim or enforce_input_project:
            self.input_proj = D2Conv2d(in_channels, hidden_dim, kernel_size=1)
        else:
            self.input_proj = nn.Sequential()
        if mask_classification:
            self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)

    def forward(self, x, mask_features):
        hs = self.transformer(self.input_proj(x), self.query_embed.weight, self.pe_layer(x))
        classes = self.class_embed(hs)
        masks = torch.einsum('lbqc,bchw->lbqhw', self.mask_embed(hs), mask_features)
        return list(classes.unbind(0)), list(masks.unbind(0))


class BasePixelDecoder(nn.Module):
    def __init__(self, in_channels: Sequence[int], conv_dim=D, mask_dim=D):
        super().__init__()
        lateral_convs, output_convs = [], []
        for idx, channels in enumerate(in_channels):
            if idx == len(in_channels) - 1:
                output_conv = D2Conv2d(channels, conv_dim, 3, padding=1, bias=False,
                                       norm=nn.GroupNorm(32, conv_dim), activation=F.relu)
                self.add_module(f'layer_{idx + 1}', output_conv)
                lateral_convs.append(None)
                output_convs.append(output_conv)
            else:
                lateral_conv = D2Conv2d(channels, conv_dim, 1, bias=False, norm=nn.GroupNorm(32, conv_dim))
                output_conv = D2Conv2d(conv_dim, conv_dim, 3, padding=1, bias=False, norm=nn.GroupNorm(32, conv_dim),
                                       activation=F.relu)
                self.add_module(f'adapter_{idx + 1}', lateral_conv)
                self.add_module(f'layer_{idx + 1}', output_conv)
                lateral_convs.append(lateral_conv)
                output_convs.append(output_conv)
        # plain lists, as upstream: registered only through add_module above
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]
        self.mask_features = D2Conv2d(conv_dim, mask_dim, 3, padding=1)

    def forward_features(self, features: List[torch.Tensor]):
        y = None
        for idx, x in enumerate(features[::-1]):
            if self.lateral_convs[idx] is None:
                y = self.output_convs[idx](x)
            else:
                cur = self.lateral_convs[idx](x)
                y = self.output_convs[idx](cur + F.interpolate(y, size=cur.shape[-2:], mode='nearest'))
        return self.mask_features(y), None


class TransformerEncoderOnly(nn.Module):
    def __init__(self, d_model, nhead, num_encoder_layers, dim_feedforward, pre_norm=False):
        super().__init__()
        self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, dim_feedforward),
                                          num_encoder_layers, nn.LayerNorm(d_model) if pre_norm else None)

    def forward(self, src, pos_embed):
        bs, c, h, w = src.shape
        memory = self.encoder(src.flatten(2).permute(2, 0, 1), pos_embed.flatten(2).permute(2, 0, 1))
        return memory.permute(1, 2, 0).view(bs, c, h, w)


class TransformerEncoderPixelDecoder(BasePixelDecoder):
    def __init__(self, in_channels: Sequence[int], conv_dim=D, mask_dim=D, nheads=HEADS, dim_feedforward=FFN,
                 enc_layers=ENC_LAYERS, pre_norm=False):
        super().__init__(in_channels, conv_dim, mask_dim)
        self.input_proj = D2Conv2d(in_channels[-1], conv_dim, kernel_size=1)
        self.transformer = TransformerEncoderOnly(conv_dim, nheads, enc_layers, dim_feedforward, pre_norm)
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        output_conv = D2Conv2d(conv_dim, conv_dim, 3, padding=1, bias=False, norm=nn.GroupNorm(32, conv_dim),
                               activation=F.relu)
        delattr(self, f'layer_{len(in_channels)}')
        self.add_module(f'layer_{len(in_channels)}', output_conv)
        self.output_convs[0] = output_conv

    def forward_features(self, features: List[torch.Tensor]):
        y, encoded = None, None
        for idx, x in enumerate(features[::-1]):
            if self.lateral_convs[idx] is None:
                encoded = self.transformer(self.input_proj(x), self.pe_layer(x))
                y = self.output_convs[idx](encoded)
            else:
                cur = self.lateral_convs[idx](x)
                y = self.output_convs[idx](cur + F.interpolate(y, size=cur.shape[-2:], mode='nearest'))
        return self.mask_features(y), encoded


class MaskFormerHead(nn.Module):
    """``transformer_in_feature``: 'transformer_encoder' (with TransformerEncoderPixelDecoder) or 'res5'."""

    def __init__(self, in_channels: Sequence[int] = IN_CHANNELS, num_classes: int = NUM_CLASSES,
                 with_encoder: bool = False, enforce_input_project: bool = False, predictor_enc_layers: int = 0,
                 pre_norm: bool = False, mask_classification: bool = True):
        super().__init__()
        if with_encoder:
            self.pixel_decoder = TransformerEncoderPixelDecoder(in_channels, pre_norm=pre_norm)
        else:
            self.pixel_decoder = BasePixelDecoder(in_channels)
        self.transformer_in_feature = 'transformer_encoder' if with_encoder else 'res5'
        self.predictor = TransformerPredictor(D if with_encoder else in_channels[-1], num_classes,
                                              enc_layers=predictor_enc_layers, pre_norm=pre_norm,
                                              enforce_input_project=enforce_input_project,
                                              mask_classification=mask_classification)

    def forward(self, features: List[torch.Tensor]):
        mask_features, encoded = self.pixel_decoder.forward_features(features)
        memory = encoded if self.transformer_in_feature == 'transformer_encoder' else features[-1]
        return self.predictor(memory, mask_features)


class SetCriterion(nn.Module):
    def __init__(self, num_classes, eos_coef=0.1):
        super().__init__()
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer('empty_weight', empty_weight)


class D2MaskFormerV1(nn.Module):
    """meta_arch MaskFormer without its backbone: sem_seg_head + criterion."""

    def __init__(self, num_classes: int = NUM_CLASSES, in_channels: Sequence[int] = IN_CHANNELS, **head_kwargs):
        super().__init__()
        self.sem_seg_head = MaskFormerHead(in_channels, num_classes, **head_kwargs)
        self.criterion = SetCriterion(num_classes)

    def forward(self, features: List[torch.Tensor]):
        return self.sem_seg_head(features)


def official_maskformer_shapes(in_channels: Sequence[int], num_classes: int, with_encoder: bool,
                               hidden: int = D, conv_dim: int = D, mask_dim: int = D, queries: int = QUERIES,
                               dec_layers: int = DEC_LAYERS, enc_layers: int = ENC_LAYERS, ffn: int = FFN,
                               enforce_input_project: bool = False) -> Dict[str, tuple]:
    """Key -> shape of an official MaskFormer head, written out by hand from the upstream modules
    (independent of the classes above, which give the same keys through ``state_dict()``)."""
    pd, pr = 'sem_seg_head.pixel_decoder.', 'sem_seg_head.predictor.'
    shapes: Dict[str, tuple] = {}
    n = len(in_channels)
    for k in range(1, n + 1):
        c_in = in_channels[k - 1]
        if k < n:
            shapes[f'{pd}adapter_{k}.weight'] = (conv_dim, c_in, 1, 1)
            shapes[f'{pd}adapter_{k}.norm.weight'] = shapes[f'{pd}adapter_{k}.norm.bias'] = (conv_dim,)
            shapes[f'{pd}layer_{k}.weight'] = (conv_dim, conv_dim, 3, 3)
        else:
            shapes[f'{pd}layer_{k}.weight'] = (conv_dim, conv_dim if with_encoder else c_in, 3, 3)
        shapes[f'{pd}layer_{k}.norm.weight'] = shapes[f'{pd}layer_{k}.norm.bias'] = (conv_dim,)
    shapes[f'{pd}mask_features.weight'] = (mask_dim, conv_dim, 3, 3)
    shapes[f'{pd}mask_features.bias'] = (mask_dim,)

    def mha(p, dim):
        shapes.update({p + 'in_proj_weight': (3 * dim, dim), p + 'in_proj_bias': (3 * dim,),
                       p + 'out_proj.weight': (dim, dim), p + 'out_proj.bias': (dim,)})

    def ffn_norms(p, dim, norms):
        shapes.update({p + 'linear1.weight': (ffn, dim), p + 'linear1.bias': (ffn,),
                       p + 'linear2.weight': (dim, ffn), p + 'linear2.bias': (dim,)})
        for i in range(1, norms + 1):
            shapes[f'{p}norm{i}.weight'] = shapes[f'{p}norm{i}.bias'] = (dim,)

    if with_encoder:
        shapes[pd + 'input_proj.weight'] = (conv_dim, in_channels[-1], 1, 1)
        shapes[pd + 'input_proj.bias'] = (conv_dim,)
        for j in range(enc_layers):
            p = f'{pd}transformer.encoder.layers.{j}.'
            mha(p + 'self_attn.', conv_dim)
            ffn_norms(p, conv_dim, 2)
    for i in range(dec_layers):
        p = f'{pr}transformer.decoder.layers.{i}.'
        mha(p + 'self_attn.', hidden)
        mha(p + 'multihead_attn.', hidden)
        ffn_norms(p, hidden, 3)
    shapes[pr + 'transformer.decoder.norm.weight'] = shapes[pr + 'transformer.decoder.norm.bias'] = (hidden,)
    shapes[pr + 'query_embed.weight'] = (queries, hidden)
    memory = conv_dim if with_encoder else in_channels[-1]
    if memory != hidden or enforce_input_project:
        shapes[pr + 'input_proj.weight'] = (hidden, memory, 1, 1)
        shapes[pr + 'input_proj.bias'] = (hidden,)
    shapes[pr + 'class_embed.weight'] = (num_classes + 1, hidden)
    shapes[pr + 'class_embed.bias'] = (num_classes + 1,)
    for i, (n_in, n_out) in enumerate([(hidden, hidden), (hidden, hidden), (hidden, mask_dim)]):
        shapes[f'{pr}mask_embed.layers.{i}.weight'] = (n_out, n_in)
        shapes[f'{pr}mask_embed.layers.{i}.bias'] = (n_out,)
    return shapes
