"""Masked-attention transformer decoder (Mask2Former, Sec. 3.2.1 / 3.2.2).

Shape legend:
    B       batch
    Q       queries
    D       embed_dims (256)
    K_l     H_l * W_l, keys of feature level l (level 0 = coarsest, stride 32)
    h, w    stride-4 size of the mask logits
    heads   attention heads

Each layer: masked cross-attention (queries -> one feature level) -> self-attention -> FFN, each
followed by a residual add and LayerNorm (post-norm), no dropout (``attention_order`` and
``dropout`` of the layer switch to DETR's self-attention-first order and dropout, the paper's
ablation of its optimisation improvements). Layers visit the levels
round-robin (1/32, 1/16, 1/8, 1/32, ...). Before every layer, the mask predicted from the
previous queries restricts cross-attention to the pixels whose sigmoid is >= 0.5.

The paper's ablations are switches of :class:`M2FTransformerDecoder`: ``use_masked_attention=False``
(plain cross-attention) and ``feature_levels=[0]`` (every layer attends to the 1/32 level only,
no high-resolution features).

Attention implementation and its memory cost: ``F.scaled_dot_product_attention`` with a BOOLEAN
mask of shape [B, 1, Q, K] that broadcasts over heads. The mask costs B*Q*K bytes, 1/heads of the
[B*heads, Q, K] mask mmdet builds with ``repeat``. SDPA turns it into an additive float mask of the
same broadcast shape (4*B*Q*K bytes). The CPU / math path still materialises the
[B, heads, Q, K] float scores, like ``nn.MultiheadAttention``; the CUDA memory-efficient kernel
(chosen when a mask is given) does not. At 1024x1024 input, B=2, Q=100, K=128*128:
mask 3.3 MB, float mask 13 MB, math-path scores 105 MB per layer.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.mmdet_compat import decoder_layer_kwargs, require_intermediate
from m2f_mm.registry import register_model

# predict(normed queries [B, Q, D]) -> (class logits [B, Q, C+1], mask logits [B, Q, h, w] or None when the
# caller does not need this set's stride-4 masks)
PredictFn = Callable[[Tensor], Tuple[Tensor, Optional[Tensor]]]
# attention_logits((H_l, W_l)) -> mask logits [B, Q, H_l, W_l] of the set predicted last, computed at that size
AttentionLogitsFn = Callable[[Tuple[int, int]], Tensor]


def unmask_empty_rows(blocked: Tensor) -> Tensor:
    """A query whose mask blocks every key may attend everywhere (else softmax gives NaN).

    Args:
        blocked: BoolTensor[..., Q, K], True = this key is masked out for this query.

    Returns:
        BoolTensor of the same shape with fully blocked rows set to all False.
    """
    return blocked & ~blocked.all(dim=-1, keepdim=True)


def attention_mask_from_logits(mask_logits: Tensor, size: Tuple[int, int]) -> Tensor:
    """Masked-attention mask for the next layer from the current mask prediction.

    Args:
        mask_logits: [B, Q, h, w] mask logits at stride 4.
        size: (H_l, W_l) of the feature level the next layer attends to.

    Returns:
        BoolTensor[B, 1, Q, H_l*W_l], True = blocked (sigmoid < 0.5), no gradient, fully
        blocked rows already released by :func:`unmask_empty_rows`. Dim 1 broadcasts over heads.
    """
    with torch.no_grad():
        resized = F.interpolate(mask_logits.detach(), size=tuple(size), mode='bilinear', align_corners=False)
        return attention_mask_at_size(resized)


def attention_mask_at_size(logits: Tensor) -> Tensor:
    """Masked-attention mask from mask logits already at the attended level's size.

    Args:
        logits: [B, Q, H_l, W_l].

    Returns:
        BoolTensor[B, 1, Q, H_l*W_l], as :func:`attention_mask_from_logits`.
    """
    with torch.no_grad():
        blocked = logits.detach().flatten(2).sigmoid() < 0.5
        return unmask_empty_rows(blocked).unsqueeze(1)


class M2FAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameter layout, run through SDPA.

    Keeping the ``in_proj_weight`` / ``out_proj`` layout means mmdet's and detectron2's
    checkpoints map onto it by renaming only.
    """

    def __init__(self, *, embed_dims: int, num_heads: int, attn_drop: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise M2FConfigError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.attn_drop = float(attn_drop)  # dropout on the attention weights, training only (DETR: 0.1)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dims, embed_dims))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dims))
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, blocked: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            query: [B, Q, D] (position already added).
            key: [B, K, D] (position already added).
            value: [B, K, D].
            blocked: BoolTensor broadcastable to [B, heads, Q, K], True = not attended; or None.

        Returns:
            [B, Q, D] attention output (no residual).
        """
        b, q_len, d = query.shape
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)

        def heads(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
            return F.linear(x, weight, bias).view(b, x.shape[1], self.num_heads, -1).transpose(1, 2)

        # SDPA's boolean mask means "may attend", the opposite of nn.MultiheadAttention's.
        allowed = None if blocked is None else ~blocked
        out = F.scaled_dot_product_attention(heads(query, w_q, b_q), heads(key, w_k, b_k), heads(value, w_v, b_v),
                                             attn_mask=allowed,
                                             dropout_p=self.attn_drop if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, q_len, d))


ATTENTION_ORDERS = ('cross_first', 'self_first')


@register_model
class M2FTransformerDecoderLayer(BaseModule):
    """Masked cross-attention -> self-attention -> FFN, each + residual + LayerNorm.

    Args:
        embed_dims, num_heads, feedforward_channels: D, heads and the FFN's hidden width.
        attention_order: ``'cross_first'`` (Mask2Former) or ``'self_first'`` (the standard DETR
            order, the paper's ablation of its optimisation improvements). The parameters and their
            names do not depend on the order: ``norm1`` always follows the cross-attention.
        dropout: DETR-style dropout, training only: on the attention weights, on each attention
            output and on the FFN's hidden and output activations. 0.0 (Mask2Former); 0.1 is the
            paper's ablation.
    """

    def __init__(self, *, embed_dims: int = 256, num_heads: int = 8, feedforward_channels: int = 2048,
                 attention_order: str = 'cross_first', dropout: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if attention_order not in ATTENTION_ORDERS:
            raise M2FConfigError(f'transformer_decoder.layer_cfg.attention_order={attention_order!r}: use one of '
                                 f'{ATTENTION_ORDERS}')
        if not 0.0 <= dropout < 1.0:
            raise M2FConfigError(f'transformer_decoder.layer_cfg.dropout={dropout}: must be in [0, 1)')
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.attention_order, self.dropout = attention_order, float(dropout)
        self.cross_attn = M2FAttention(embed_dims=embed_dims, num_heads=num_heads, attn_drop=dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.self_attn = M2FAttention(embed_dims=embed_dims, num_heads=num_heads, attn_drop=dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.linear1 = nn.Linear(embed_dims, feedforward_channels)
        self.linear2 = nn.Linear(feedforward_channels, embed_dims)
        self.norm3 = nn.LayerNorm(embed_dims)

    @classmethod
    def from_cfg(cls, layer_cfg: dict) -> 'M2FTransformerDecoderLayer':
        """Build from our typed keywords or mmdet's self_attn_cfg / cross_attn_cfg / ffn_cfg (+ norm_cfg LN)."""
        return cls(**decoder_layer_kwargs(layer_cfg))

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor,
                blocked: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            query: [B, Q, D] query features.
            query_pos: [B, Q, D] learnable query positional embedding.
            memory: [B, K, D] one level's features (+ level embedding); the values.
            memory_pos: [B, K, D] or [1, K, D] sine encoding of that level, added to the keys.
            blocked: BoolTensor[B, 1, Q, K], True = masked out (see attention_mask_from_logits).

        Returns:
            [B, Q, D].
        """
        if self.attention_order == 'self_first':
            query = self._self_attention(query, query_pos)
            query = self._cross_attention(query, query_pos, memory, memory_pos, blocked)
        else:
            query = self._cross_attention(query, query_pos, memory, memory_pos, blocked)
            query = self._self_attention(query, query_pos)
        hidden = self._drop(F.relu(self.linear1(query)))
        return self.norm3(query + self._drop(self.linear2(hidden)))

    def _drop(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout, self.training) if self.dropout else x

    def _cross_attention(self, query: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor,
                         blocked: Optional[Tensor]) -> Tensor:
        out = self.cross_attn(query + query_pos, memory + memory_pos, memory, blocked)
        return self.norm1(query + self._drop(out))

    def _self_attention(self, query: Tensor, query_pos: Tensor) -> Tensor:
        q = query + query_pos
        return self.norm2(query + self._drop(self.self_attn(q, q, query)))


@register_model
class M2FTransformerDecoder(BaseModule):
    """The stack of decoder layers, the final LayerNorm, and the masked-attention loop.

    Args:
        num_layers: decoder layers (9 = 3 rounds over 3 levels).
        layer_cfg: our typed layer keywords or mmdet's layer_cfg.
        return_intermediate: mmdet's key; must be True (every set is returned and supervised).
        use_masked_attention: False turns the cross-attention into plain (unmasked) attention, the
            paper's ablation; predictions are still made after every layer for deep supervision.
        feature_levels: the multi-scale maps the layers visit round-robin, as indices into the pixel
            decoder's list (0 = the coarsest, 1/32). None (default) = all of them, the paper's
            efficient multi-scale strategy; ``[0]`` = the single 1/32 level of the paper's ablation.
    """

    def __init__(self, *, num_layers: int = 9, layer_cfg: Optional[dict] = None, return_intermediate: bool = True,
                 use_masked_attention: bool = True, feature_levels: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        require_intermediate(return_intermediate)
        self.use_masked_attention = use_masked_attention
        if num_layers < 1:
            raise M2FConfigError(f'transformer_decoder.num_layers must be >= 1, got {num_layers}')
        if feature_levels is not None and (not len(feature_levels) or min(feature_levels) < 0):
            raise M2FConfigError(f'transformer_decoder.feature_levels must be None or a non-empty list of level '
                                 f'indices >= 0 (0 = the coarsest level), got {feature_levels!r}')
        self.feature_levels = None if feature_levels is None else [int(lvl) for lvl in feature_levels]
        self.layers = ModuleList([M2FTransformerDecoderLayer.from_cfg(layer_cfg or {}) for _ in range(num_layers)])
        self.embed_dims = self.layers[0].embed_dims
        self.num_heads = self.layers[0].num_heads
        self.decoder_norm = nn.LayerNorm(self.embed_dims)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def init_weights(self) -> None:
        # As mmdet's Mask2FormerHead: Xavier-normal on every matrix of the decoder.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        self._is_init = True

    def forward(self, query: Tensor, query_pos: Tensor, memories: Sequence[Tensor], memory_pos: Sequence[Tensor],
                memory_shapes: Sequence[Tuple[int, int]], predict: PredictFn,
                attention_logits: Optional[AttentionLogitsFn] = None) -> Tuple[List[Tensor], List[Optional[Tensor]]]:
        """
        Args:
            query: [B, Q, D] initial (learnable) query features.
            query_pos: [B, Q, D] learnable query positional embeddings.
            memories: per level (coarsest first) [B, K_l, D] features + level embedding.
            memory_pos: per level [B or 1, K_l, D] sine positional encoding.
            memory_shapes: per level (H_l, W_l), H_l * W_l = K_l.
            predict: maps decoder-normed queries [B, Q, D] to (cls [B, Q, C+1], mask [B, Q, h, w]); the mask
                may be None for a set whose stride-4 masks the caller does not need, and then
            attention_logits: gives that set's mask logits at the attended level's size, from which the next
                layer's attention mask is taken (the head computes them from per-pixel embeddings resized to
                that size: the same logits, since bilinear resizing is linear).

        Returns:
            cls_per_set, mask_per_set: num_layers + 1 entries each (a mask None where predict gave none);
            set 0 comes from the initial queries, set i from layer i.
        """
        levels = list(range(len(memories))) if self.feature_levels is None else self.feature_levels
        if max(levels) >= len(memories):
            raise M2FConfigError(f'transformer_decoder.feature_levels={levels} but the pixel decoder gives '
                                 f'{len(memories)} levels (indices 0..{len(memories) - 1})')
        cls_sets, mask_sets = [], []

        def predict_and_mask(q: Tensor, next_level: int) -> Tensor:
            cls, mask = predict(self.decoder_norm(q))
            cls_sets.append(cls)
            mask_sets.append(mask)
            if not self.use_masked_attention:
                return None
            size = tuple(memory_shapes[next_level])
            if mask is None:
                if attention_logits is None:
                    raise ValueError('predict gave no mask for a set and no attention_logits was passed: the next '
                                     'layer has no attention mask')
                with torch.no_grad():
                    return attention_mask_at_size(attention_logits(size))
            return attention_mask_from_logits(mask, size)

        blocked = predict_and_mask(query, levels[0])
        for i, layer in enumerate(self.layers):
            level = levels[i % len(levels)]
            query = layer(query, query_pos, memories[level], memory_pos[level], blocked)
            # The mask after the last layer is never used; skip its resize.
            if i + 1 < len(self.layers):
                blocked = predict_and_mask(query, levels[(i + 1) % len(levels)])
            else:
                cls, mask = predict(self.decoder_norm(query))
                cls_sets.append(cls)
                mask_sets.append(mask)
        return cls_sets, mask_sets
