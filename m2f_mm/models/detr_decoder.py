"""DETR's transformer (post-norm encoder and decoder layers): MaskFormer's transformer module.

Shape legend:
    B       batch
    Q       queries
    K       keys: H * W positions of the one feature map attended to (MaskFormer: stride 32)
    D       embed_dims (256)

MaskFormer (Sec. 3.3 of its paper) decodes N queries with a standard DETR decoder over ONE feature
map: each layer is self-attention -> cross-attention -> FFN, each followed by dropout, a residual add
and LayerNorm (post-norm); the query features start at zero and the learnable query embeddings are
added to queries and keys of every attention as positions; the keys of the cross-attention get the
sine encoding of the map. Every layer's output, passed through one shared final LayerNorm, is a
prediction set (deep supervision). The encoder layer (self-attention -> FFN) is the same without
the cross-attention; MaskFormer's pixel decoder stacks six of them over the 1/32 map.

The differences from Mask2Former's decoder (``transformer_decoder.py``): no masked attention, one
feature level, self-attention before cross-attention, dropout 0.1, no prediction before layer 1.
Padded keys (``key_padding_mask``) are never attended to, as in DETR.
"""
from typing import List, Optional

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.mmdet_compat import detr_layer_kwargs, require_intermediate
from m2f_mm.models.transformer_decoder import M2FAttention
from m2f_mm.registry import register_model


def blocked_keys(key_padding_mask: Optional[Tensor]) -> Optional[Tensor]:
    """key_padding_mask: BoolTensor[B, K] (True = padding) or None -> BoolTensor[B, 1, 1, K] that
    broadcasts over heads and queries in :class:`M2FAttention`, or None."""
    if key_padding_mask is None:
        return None
    return key_padding_mask.bool()[:, None, None, :]


class _DETRLayerBase(BaseModule):
    """Typed keywords shared by the encoder and decoder layers."""

    def __init__(self, *, embed_dims: int = 256, num_heads: int = 8, feedforward_channels: int = 2048,
                 dropout: float = 0.1, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0.0 <= float(dropout) < 1.0:
            raise M2FConfigError(f'dropout must be in [0, 1), got {dropout}')
        self.embed_dims, self.num_heads, self.dropout = embed_dims, num_heads, float(dropout)
        self.self_attn = M2FAttention(embed_dims=embed_dims, num_heads=num_heads, attn_drop=dropout)
        self.linear1 = nn.Linear(embed_dims, feedforward_channels)
        self.linear2 = nn.Linear(feedforward_channels, embed_dims)

    def _drop(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout, self.training)

    def _ffn(self, x: Tensor) -> Tensor:
        """x: [B, N, D] -> FFN(x) after its output dropout (no residual)."""
        return self._drop(self.linear2(self._drop(F.relu(self.linear1(x)))))


@register_model
class M2FDETREncoderLayer(_DETRLayerBase):
    """Self-attention -> FFN, each + dropout + residual + LayerNorm (post-norm)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.norm1 = nn.LayerNorm(self.embed_dims)
        self.norm2 = nn.LayerNorm(self.embed_dims)

    def forward(self, x: Tensor, pos: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            x: [B, K, D] features; pos: [B or 1, K, D] their positional encoding (added to queries and keys).
            key_padding_mask: BoolTensor[B, K], True = padding (never attended to), or None.

        Returns:
            [B, K, D].
        """
        q = x + pos
        x = self.norm1(x + self._drop(self.self_attn(q, q, x, blocked_keys(key_padding_mask))))
        return self.norm2(x + self._ffn(x))


@register_model
class M2FDETRDecoderLayer(_DETRLayerBase):
    """Self-attention -> cross-attention -> FFN, each + dropout + residual + LayerNorm (post-norm)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.norm1 = nn.LayerNorm(self.embed_dims)
        self.cross_attn = M2FAttention(embed_dims=self.embed_dims, num_heads=self.num_heads,
                                       attn_drop=self.dropout)
        self.norm2 = nn.LayerNorm(self.embed_dims)
        self.norm3 = nn.LayerNorm(self.embed_dims)

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor,
                key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            query: [B, Q, D]; query_pos: [B, Q, D] learnable query embeddings.
            memory: [B, K, D] the values; memory_pos: [B or 1, K, D] added to the keys.
            key_padding_mask: BoolTensor[B, K], True = padding, or None.

        Returns:
            [B, Q, D].
        """
        q = query + query_pos
        query = self.norm1(query + self._drop(self.self_attn(q, q, query)))
        attended = self.cross_attn(query + query_pos, memory + memory_pos, memory, blocked_keys(key_padding_mask))
        query = self.norm2(query + self._drop(attended))
        return self.norm3(query + self._ffn(query))


def _layers(layer_type, num_layers: int, layer_cfg: Optional[dict], where: str, cross: bool) -> ModuleList:
    if num_layers < 1:
        raise M2FConfigError(f'{where}.num_layers must be >= 1, got {num_layers}')
    kwargs = detr_layer_kwargs(layer_cfg or {}, f'{where}.layer_cfg', cross_attention=cross)
    return ModuleList([layer_type(**kwargs) for _ in range(num_layers)])


def xavier_uniform_matrices(module: nn.Module) -> None:
    """Xavier-uniform on every parameter with more than one dimension (DETR's and MaskFormer's init)."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


@register_model
class M2FDETREncoder(BaseModule):
    """``num_layers`` encoder layers, no final norm (DETR's post-norm encoder).

    Args:
        num_layers: encoder layers (MaskFormer: 6).
        layer_cfg: ``embed_dims`` / ``num_heads`` / ``feedforward_channels`` / ``dropout``, or mmdet's
            ``self_attn_cfg`` + ``ffn_cfg``.
    """

    def __init__(self, *, num_layers: int = 6, layer_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.layers = _layers(M2FDETREncoderLayer, num_layers, layer_cfg, 'encoder', cross=False)
        self.embed_dims = self.layers[0].embed_dims

    def init_weights(self) -> None:
        xavier_uniform_matrices(self)
        self._is_init = True

    def forward(self, x: Tensor, pos: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """x: [B, K, D], pos: [B or 1, K, D], key_padding_mask: BoolTensor[B, K] or None -> [B, K, D]."""
        for layer in self.layers:
            x = layer(x, pos, key_padding_mask)
        return x


@register_model
class M2FDETRDecoder(BaseModule):
    """``num_layers`` decoder layers and the final LayerNorm shared by all their outputs.

    Args:
        num_layers: decoder layers (MaskFormer: 6), one prediction set each.
        layer_cfg: ``embed_dims`` / ``num_heads`` / ``feedforward_channels`` / ``dropout``, or mmdet's
            ``self_attn_cfg`` + ``cross_attn_cfg`` + ``ffn_cfg``.
        return_intermediate: mmdet's key; must be True (every layer's output is a supervised prediction set).
    """

    def __init__(self, *, num_layers: int = 6, layer_cfg: Optional[dict] = None, return_intermediate: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        require_intermediate(return_intermediate)
        self.layers = _layers(M2FDETRDecoderLayer, num_layers, layer_cfg, 'transformer_decoder', cross=True)
        self.embed_dims = self.layers[0].embed_dims
        self.num_heads = self.layers[0].num_heads
        self.decoder_norm = nn.LayerNorm(self.embed_dims)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def init_weights(self) -> None:
        xavier_uniform_matrices(self)
        self._is_init = True

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor,
                key_padding_mask: Optional[Tensor] = None) -> List[Tensor]:
        """
        Args:
            query: [B, Q, D] initial query features (zeros in MaskFormer).
            query_pos: [B, Q, D] learnable query embeddings.
            memory: [B, K, D]; memory_pos: [B or 1, K, D]; key_padding_mask: BoolTensor[B, K] or None.

        Returns:
            ``num_layers`` tensors [B, Q, D]: each layer's output after the final LayerNorm.
        """
        outputs = []
        for layer in self.layers:
            query = layer(query, query_pos, memory, memory_pos, key_padding_mask)
            outputs.append(self.decoder_norm(query))
        return outputs
