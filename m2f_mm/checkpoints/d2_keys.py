"""detectron2 (facebookresearch/Mask2Former) key tables and backbone layouts; see ``d2.py`` for why
renaming is enough.

Head (detectron2 name on the left, ours under ``panoptic_head.`` / ``decode_head.`` on the right):

    sem_seg_head.pixel_decoder.
        input_proj.{l}.0 / .1                       pixel_decoder.input_projs.{l}.conv / .gn
        transformer.level_embed  (Parameter [L, D]) pixel_decoder.level_embed.weight
        transformer.encoder.layers.{i}.self_attn.*  pixel_decoder.encoder.layers.{i}.self_attn.*
        transformer.encoder.layers.{i}.{linear1,linear2,norm1,norm2}   (same names)
        adapter_{k} (+ .norm) / layer_{k} (+ .norm) pixel_decoder.lateral_convs / output_convs.{F-k}.conv / .gn
        mask_features                               pixel_decoder.mask_features
    sem_seg_head.predictor.            (ours: transformer_decoder.layers.{i}.*)
        transformer_cross_attention_layers.{i}.multihead_attn.* / .norm    cross_attn.* / norm1
        transformer_self_attention_layers.{i}.self_attn.* / .norm          self_attn.* / norm2
        transformer_ffn_layers.{i}.{linear1,linear2} / .norm               {linear1,linear2} / norm3
        decoder_norm                                transformer_decoder.decoder_norm
        query_feat / query_embed / level_embed      (same)
        input_proj.{l}  (only if widths differ)     input_projs.{l}
        class_embed                                 class_embed
        mask_embed.layers.{0,1,2}                   mask_embed.layers.{0,1,2}

MaskFormer head (facebookresearch/MaskFormer; n = number of input levels, 4 for res2..res5):

    sem_seg_head.pixel_decoder.
        adapter_{k} (+ .norm), k < n                pixel_decoder.lateral_convs.{k-1}.conv / .gn
        layer_{k} (+ .norm), k < n                  pixel_decoder.output_convs.{k-1}.conv / .gn
        layer_{n} (+ .norm)                         pixel_decoder.last_feat_conv      (BasePixelDecoder)
                                                    pixel_decoder.encoder_out_proj    (TransformerEncoderPixelDecoder)
        input_proj                                  pixel_decoder.encoder_in_proj
        transformer.encoder.layers.{j}.self_attn.*  pixel_decoder.encoder.layers.{j}.self_attn.*
        transformer.encoder.layers.{j}.{linear1,linear2,norm1,norm2}   (same names)
        mask_features                               pixel_decoder.mask_features
    sem_seg_head.predictor.
        transformer.decoder.layers.{i}.self_attn.*          transformer_decoder.layers.{i}.self_attn.*
        transformer.decoder.layers.{i}.multihead_attn.*     transformer_decoder.layers.{i}.cross_attn.*
        transformer.decoder.layers.{i}.{linear1,linear2,norm1,norm2,norm3}   (same names)
        transformer.decoder.norm                    transformer_decoder.decoder_norm
        query_embed / input_proj (only if widths differ or enforced) / class_embed / mask_embed.layers.*
                                                    (same names)

Unlike Mask2Former, MaskFormer's FPN convs keep their registration order (finest first) here too, and
its decoder layers keep DETR's names (norm1 after self-attention, norm2 after cross-attention).
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

from torch import Tensor

# --------------------------------------------------------------------------- rule tables
# Templates with {slot}s (m2f_mm/checkpoints/rename.py); one table serves both directions.
PIXEL_DECODER = 'sem_seg_head.pixel_decoder.'
PREDICTOR = 'sem_seg_head.predictor.'
_ENC = PIXEL_DECODER + 'transformer.encoder.layers.{i}.'
_DEC = 'transformer_decoder.layers.{i}.'

# (detectron2 template, our template relative to the head prefix)
HEAD_TABLE: List[Tuple[str, str]] = [
    (PIXEL_DECODER + 'input_proj.{i}.0.{param}', 'pixel_decoder.input_projs.{i}.conv.{param}'),
    (PIXEL_DECODER + 'input_proj.{i}.1.{param}', 'pixel_decoder.input_projs.{i}.gn.{param}'),
    (PIXEL_DECODER + 'transformer.level_embed', 'pixel_decoder.level_embed.weight'),
    (_ENC + 'self_attn.{msda}.{param}', 'pixel_decoder.encoder.layers.{i}.self_attn.{msda}.{param}'),
    (_ENC + '{encmod}.{param}', 'pixel_decoder.encoder.layers.{i}.{encmod}.{param}'),
    (PIXEL_DECODER + 'mask_features.{param}', 'pixel_decoder.mask_features.{param}'),
    (PREDICTOR + 'transformer_cross_attention_layers.{i}.multihead_attn.{mha}', _DEC + 'cross_attn.{mha}'),
    (PREDICTOR + 'transformer_cross_attention_layers.{i}.norm.{param}', _DEC + 'norm1.{param}'),
    (PREDICTOR + 'transformer_self_attention_layers.{i}.self_attn.{mha}', _DEC + 'self_attn.{mha}'),
    (PREDICTOR + 'transformer_self_attention_layers.{i}.norm.{param}', _DEC + 'norm2.{param}'),
    (PREDICTOR + 'transformer_ffn_layers.{i}.{lin}.{param}', _DEC + '{lin}.{param}'),
    (PREDICTOR + 'transformer_ffn_layers.{i}.norm.{param}', _DEC + 'norm3.{param}'),
    (PREDICTOR + 'decoder_norm.{param}', 'transformer_decoder.decoder_norm.{param}'),
    (PREDICTOR + '{embedding}.weight', '{embedding}.weight'),
    (PREDICTOR + 'input_proj.{i}.{param}', 'input_projs.{i}.{param}'),
    (PREDICTOR + 'class_embed.{param}', 'class_embed.{param}'),
    (PREDICTOR + 'mask_embed.layers.{i}.{param}', 'mask_embed.layers.{i}.{param}'),
]


_MF_ENC = PIXEL_DECODER + 'transformer.encoder.layers.{i}.'
_MF_DEC = PREDICTOR + 'transformer.decoder.layers.{i}.'

# MaskFormer: everything but the FPN, whose table depends on the level count and the pixel decoder.
MASKFORMER_HEAD_TABLE: List[Tuple[str, str]] = [
    (PIXEL_DECODER + 'input_proj.{param}', 'pixel_decoder.encoder_in_proj.{param}'),
    (_MF_ENC + 'self_attn.{mha}', 'pixel_decoder.encoder.layers.{i}.self_attn.{mha}'),
    (_MF_ENC + '{encmod}.{param}', 'pixel_decoder.encoder.layers.{i}.{encmod}.{param}'),
    (PIXEL_DECODER + 'mask_features.{param}', 'pixel_decoder.mask_features.{param}'),
    (_MF_DEC + 'self_attn.{mha}', _DEC + 'self_attn.{mha}'),
    (_MF_DEC + 'multihead_attn.{mha}', _DEC + 'cross_attn.{mha}'),
    (_MF_DEC + '{decmod}.{param}', _DEC + '{decmod}.{param}'),
    (PREDICTOR + 'transformer.decoder.norm.{param}', 'transformer_decoder.decoder_norm.{param}'),
    (PREDICTOR + 'query_embed.weight', 'query_embed.weight'),
    (PREDICTOR + 'input_proj.{param}', 'input_proj.{param}'),
    (PREDICTOR + 'class_embed.{param}', 'class_embed.{param}'),
    (PREDICTOR + 'mask_embed.layers.{i}.{param}', 'mask_embed.layers.{i}.{param}'),
]


def maskformer_fpn_table(num_levels: int, with_encoder: bool) -> List[Tuple[str, str]]:
    """adapter_k / layer_k (k < n) <-> lateral/output_convs[k - 1]; layer_n <-> the 1/32 conv."""
    table = []
    for k in range(1, num_levels):
        for d2_name, ours in (('adapter', 'lateral_convs'), ('layer', 'output_convs')):
            table.append((f'{PIXEL_DECODER}{d2_name}_{k}.{{param}}', f'pixel_decoder.{ours}.{k - 1}.conv.{{param}}'))
            table.append((f'{PIXEL_DECODER}{d2_name}_{k}.norm.{{param}}', f'pixel_decoder.{ours}.{k - 1}.gn.{{param}}'))
    last = 'encoder_out_proj' if with_encoder else 'last_feat_conv'
    table.append((f'{PIXEL_DECODER}layer_{num_levels}.{{param}}', f'pixel_decoder.{last}.conv.{{param}}'))
    table.append((f'{PIXEL_DECODER}layer_{num_levels}.norm.{{param}}', f'pixel_decoder.{last}.gn.{{param}}'))
    return table


def fpn_table(num_fpn: int) -> List[Tuple[str, str]]:
    """adapter_k / layer_k (registered finest first) <-> lateral/output_convs[F - k] (used coarse first)."""
    table = []
    for k in range(1, num_fpn + 1):
        j = num_fpn - k
        for d2_name, ours in (('adapter', 'lateral_convs'), ('layer', 'output_convs')):
            table.append((f'{PIXEL_DECODER}{d2_name}_{k}.{{param}}', f'pixel_decoder.{ours}.{j}.conv.{{param}}'))
            table.append((f'{PIXEL_DECODER}{d2_name}_{k}.norm.{{param}}', f'pixel_decoder.{ours}.{j}.gn.{{param}}'))
    return table


def resnet_table(deep_stem: bool) -> List[Tuple[str, str]]:
    if deep_stem:  # detectron2 DeepLab stem (3 convs) <-> mmdet ResNetV1c stem Sequential
        table = []
        for k in range(3):
            table.append((f'backbone.stem.conv{k + 1}.weight', f'backbone.stem.{3 * k}.weight'))
            table.append((f'backbone.stem.conv{k + 1}.norm.{{bn}}', f'backbone.stem.{3 * k + 1}.{{bn}}'))
    else:
        table = [('backbone.stem.conv1.weight', 'backbone.conv1.weight'),
                 ('backbone.stem.conv1.norm.{bn}', 'backbone.bn1.{bn}')]
    for s in range(2, 6):
        src, dst = f'backbone.res{s}.{{j}}.', f'backbone.layer{s - 1}.{{j}}.'
        table += [(src + 'conv{c}.weight', dst + 'conv{c}.weight'),
                  (src + 'conv{c}.norm.{bn}', dst + 'bn{c}.{bn}'),
                  (src + 'shortcut.weight', dst + 'downsample.0.weight'),
                  (src + 'shortcut.norm.{bn}', dst + 'downsample.1.{bn}')]
    return table


def _swin_reduction_to_d2(x: Tensor) -> Tensor:
    """Inverse of mmdet's ``correct_unfold_reduction_order`` ([2C, 4C] Linear weight)."""
    out_channel, in_channel = x.shape
    return x.reshape(out_channel, in_channel // 4, 4)[:, :, [0, 2, 1, 3]].transpose(1, 2).reshape(
        out_channel, in_channel)


def _swin_norm_to_d2(x: Tensor) -> Tensor:
    """Inverse of mmdet's ``correct_unfold_norm_order`` ([4C] LayerNorm weight / bias)."""
    in_channel = x.shape[0]
    return x.reshape(in_channel // 4, 4)[:, [0, 2, 1, 3]].transpose(0, 1).reshape(in_channel)


def convert_swin(d2_backbone: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """detectron2 ``backbone.*`` (official Swin names) -> mmdet SwinTransformer ``backbone.*``."""
    from mmdet.models.backbones.swin import swin_converter  # mmdet's own official-Swin converter
    stripped = OrderedDict((k[len('backbone.'):], v) for k, v in d2_backbone.items())
    converted = swin_converter(stripped)
    pos = converted.get('backbone.absolute_pos_embed')
    if pos is not None and pos.dim() == 4:  # official [1, C, H, W] -> mmdet [1, H*W, C] (APE; unused by M2F)
        converted['backbone.absolute_pos_embed'] = pos.flatten(2).transpose(1, 2).contiguous()
    return converted


def swin_to_d2(ours_backbone: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    out = OrderedDict()
    for key, value in ours_backbone.items():
        k = key[len('backbone.'):]
        if k.startswith('stages.'):
            k = 'layers.' + k[len('stages.'):]
            k = k.replace('.attn.w_msa.', '.attn.')
            k = k.replace('.ffn.layers.0.0.', '.mlp.fc1.').replace('.ffn.layers.1.', '.mlp.fc2.')
            if '.downsample.reduction.' in k:
                value = _swin_reduction_to_d2(value)
            elif '.downsample.norm.' in k:
                value = _swin_norm_to_d2(value)
        elif k.startswith('patch_embed.projection.'):
            k = 'patch_embed.proj.' + k[len('patch_embed.projection.'):]
        elif k == 'absolute_pos_embed' and value.dim() == 3:
            side = int(round(value.shape[1] ** 0.5))
            value = value.transpose(1, 2).reshape(value.shape[0], value.shape[2], side, side)
        out['backbone.' + k] = value
    return out
