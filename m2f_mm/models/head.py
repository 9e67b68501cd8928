"""Mask2Former head: pixel decoder + masked-attention transformer decoder + class / mask heads.

Shape legend:
    B       batch
    C_i     backbone channels of input level i (strides 4, 8, 16, 32)
    Q       queries
    D       transformer decoder width (= feat_channels unless an input projection is used)
    E       out_channels, per-pixel / mask embedding width
    C       classes (things + stuff); index C = no-object
    L       feature levels the decoder attends to (3: 1/32, 1/16, 1/8)
    H, W    padded batch input (``batch_input_shape``); h, w = H/4, W/4
    G       ground-truth segments of one image

``learnable_query_features=False`` is the paper's ablation of learnable query features: the queries
enter the decoder as zeros (as in MaskFormer / DETR; the query positions stay learnable), so every
query makes the same prediction before the first layer, and that set (set 0) is not supervised.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import Conv2d
from mmdet.models.layers import SinePositionalEncoding
from mmengine.model import BaseModule, ModuleList, caffe2_xavier_init
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.factored_masks import FactoredMasks
from m2f_mm.models.mmdet_compat import require_class_counts, sine_encoding_kwargs
from m2f_mm.models.transformer_decoder import M2FTransformerDecoder
from m2f_mm.registry import MODELS, register_model

MIN_INPUT_SIZE = 32  # the coarsest level has stride 32: smaller images leave it empty
MASKS_OF = ('every_set', 'last_set', 'factors')
TRAIN_MASK_ORDERS = {'factored': 'factors', 'dense': 'every_set'}  # train_mask_order -> forward's masks_of


def check_input_size(height: int, width: int) -> None:
    """Raise a clear error for inputs smaller than the coarsest stride."""
    if min(height, width) < MIN_INPUT_SIZE:
        raise M2FConfigError(f'Mask2Former needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} px '
                             f'(stride of the coarsest feature level), got {height}x{width}')


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (detectron2's MLP, ``layers.{i}``)."""

    def __init__(self, *, in_dims: int, hidden_dims: int, out_dims: int, num_layers: int = 3) -> None:
        super().__init__()
        dims = [in_dims] + [hidden_dims] * (num_layers - 1) + [out_dims]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        """x: [..., in_dims] -> [..., out_dims]."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def refuse_training_keys(train_cfg: Optional[Dict], where: str) -> None:
    """mmdet keeps num_points / assigner / sampler in ``train_cfg``; m2f_mm keeps them in the head's
    ``criterion``. A non-empty ``train_cfg`` would be silently ignored, so it is refused."""
    if train_cfg:
        raise M2FConfigError(f'{where} keys {sorted(train_cfg)}: m2f_mm reads no training settings there; put '
                             'num_points / oversample_ratio / importance_sample_ratio / assigner in the head\'s '
                             "criterion=dict(type='M2FCriterion', ...) and leave train_cfg empty")


def shift_set_index(key: str, by: int) -> str:
    """Loss key of prediction set ``i`` -> that of set ``i + by``: ``'d{i}.loss_x'`` -> ``'d{i+by}.loss_x'``.

    The last set's keys (no ``d{i}.`` prefix) are unchanged."""
    prefix, dot, rest = key.partition('.')
    if dot and prefix[:1] == 'd' and prefix[1:].isdigit():
        return f'd{int(prefix[1:]) + by}.{rest}'
    return key


def _masks_to_tensor(masks, device: torch.device) -> Tensor:
    """mmdet BitmapMasks / PolygonMasks or a tensor -> BoolTensor[G, H, W]."""
    if hasattr(masks, 'to_tensor'):
        return masks.to_tensor(dtype=torch.bool, device=device)
    return torch.as_tensor(masks, device=device).bool()


def _pad_to(x: Tensor, size: Tuple[int, int], value: int) -> Tensor:
    """Pad the last two dims of x ([..., h, w]) at bottom/right to ``size``."""
    pad_h, pad_w = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if pad_h <= 0 and pad_w <= 0:
        return x
    return F.pad(x, (0, max(pad_w, 0), 0, max(pad_h, 0)), value=value)


def build_pixel_decoder(cfg: Optional[Dict], default_type: str, in_channels: Sequence[int], feat_channels: int,
                        out_channels: int, strides: Optional[Sequence[int]]):
    """The head's pixel decoder from its config (``default_type`` when it names none), with the head's widths."""
    pd_cfg = copy.deepcopy(dict(cfg or {}))
    pd_cfg.setdefault('type', default_type)
    pd_cfg.update(in_channels=list(in_channels), feat_channels=feat_channels, out_channels=out_channels)
    if strides is not None:
        pd_cfg['strides'] = list(strides)
    return MODELS.build(pd_cfg)


@register_model
class M2FHead(BaseModule):
    """See module docstring. Config keys mirror mmdet's ``Mask2FormerHead`` where they overlap;
    the losses live in one ``criterion`` (``M2FCriterion``) instead of loss_cls/mask/dice.
    ``learnable_query_features=False``: zero query features, set 0 not supervised (the ablation).
    The head returns logits and takes no ``test_cfg``: ``M2FFusionHead`` (mmdet) and ``M2FSegHead``
    (mmseg) read the test-time settings.
    """

    def __init__(self, *, in_channels: Sequence[int], feat_channels: int = 256, out_channels: int = 256,
                 num_things_classes: Optional[int] = 80, num_stuff_classes: Optional[int] = 53, num_queries: int = 100,
                 num_transformer_feat_level: int = 3, pixel_decoder: Optional[Dict] = None,
                 enforce_decoder_input_project: bool = False, transformer_decoder: Optional[Dict] = None,
                 positional_encoding: Optional[Dict] = None, criterion: Optional[Dict] = None,
                 strides: Optional[Sequence[int]] = None, ignore_index: int = 255,
                 learnable_query_features: bool = True, train_mask_order: str = 'factored',
                 train_cfg: Optional[Dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if train_mask_order not in TRAIN_MASK_ORDERS:
            raise M2FConfigError(f"train_mask_order={train_mask_order!r}: use 'factored' (the criterion computes "
                                 "the mask logits it uses from their factors) or 'dense' (every set's [B, Q, h, w] "
                                 'first, as mmdet)')
        self.train_masks_of = TRAIN_MASK_ORDERS[train_mask_order]
        self._set_classes_and_queries(num_things_classes, num_stuff_classes, num_queries, ignore_index, in_channels)
        self.num_transformer_feat_level = num_transformer_feat_level
        self.pixel_decoder = build_pixel_decoder(pixel_decoder, 'M2FPixelDecoder', in_channels, feat_channels,
                                                 out_channels, strides)
        got_levels = getattr(self.pixel_decoder, 'num_outs', None)
        if got_levels != num_transformer_feat_level:
            raise M2FConfigError(f'num_transformer_feat_level={num_transformer_feat_level} but the pixel decoder '
                                 f'returns {got_levels} multi-scale maps (its num_outs / encoder num_levels)')

        # mmdet-style configs give no type; any registered decoder with our forward() also works.
        td_cfg = copy.deepcopy(dict(transformer_decoder or {}))
        td_cfg.setdefault('type', 'M2FTransformerDecoder')
        if td_cfg['type'] in ('M2FTransformerDecoder', M2FTransformerDecoder):
            td_cfg.pop('type')
            self.transformer_decoder = M2FTransformerDecoder(**td_cfg)
        else:
            self.transformer_decoder = MODELS.build(td_cfg)
        dims = self.transformer_decoder.embed_dims

        # Level projections only when widths differ (or forced), coarsest level first.
        self.input_projs = ModuleList([
            Conv2d(feat_channels, dims, kernel_size=1)
            if dims != feat_channels or enforce_decoder_input_project else nn.Identity()
            for _ in range(num_transformer_feat_level)])
        self.positional_encoding = SinePositionalEncoding(
            **sine_encoding_kwargs(positional_encoding, dims, 'positional_encoding'))
        self.learnable_query_features = bool(learnable_query_features)
        # learnable query features, or none (zeros, not a parameter: checkpoints of the two differ)
        self.query_feat = nn.Embedding(num_queries, dims) if self.learnable_query_features else None
        self.query_embed = nn.Embedding(num_queries, dims)  # learnable query positions
        self.level_embed = nn.Embedding(num_transformer_feat_level, dims)
        self.class_embed = nn.Linear(dims, self.num_classes + 1)
        self.mask_embed = MLP(in_dims=dims, hidden_dims=dims, out_dims=out_channels)

        self._set_training(criterion, train_cfg)

    def _set_classes_and_queries(self, num_things_classes: Optional[int], num_stuff_classes: Optional[int],
                                 num_queries: int, ignore_index: int, in_channels: Sequence[int]) -> None:
        require_class_counts('panoptic_head', num_things_classes=num_things_classes,
                             num_stuff_classes=num_stuff_classes)
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        self.num_queries = num_queries
        self.ignore_index = ignore_index
        self.in_channels = list(in_channels)

    def _set_training(self, criterion: Optional[Dict], train_cfg: Optional[Dict]) -> None:
        refuse_training_keys(train_cfg, 'train_cfg')
        self.train_cfg = train_cfg
        self.criterion_cfg = self._criterion_cfg(criterion)
        self._criterion = None  # built at the first loss() call, see criterion

    def _criterion_cfg(self, criterion: Optional[Dict]) -> Optional[Dict]:
        """The criterion config with ``num_classes`` filled from this head, so configs give it once.

        Its assigner's weights default to the criterion's own loss weights (``M2FCriterion``)."""
        if criterion is None:
            return None
        cfg = copy.deepcopy(dict(criterion))
        given = cfg.setdefault('num_classes', self.num_classes)
        if given is not None and given != self.num_classes:
            raise M2FConfigError(f'criterion.num_classes={given} but the head has {self.num_classes} classes '
                                 f'(things + stuff); leave criterion.num_classes out, the head fills it in')
        return cfg

    # ------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        for proj in self.input_projs:
            if isinstance(proj, Conv2d):
                caffe2_xavier_init(proj, bias=0)
        self.pixel_decoder.init_weights()
        self.transformer_decoder.init_weights()
        self._is_init = True

    @property
    def criterion(self):
        """The M2FCriterion, built on first use: the one switch for loss computation is whether the
        head has a ``criterion`` config.

        Built lazily (m2f_mm.models.criterion registers it on import) so inference works without it,
        and held outside the module tree so training and inference models have identical
        state_dict keys (a checkpoint loads strictly either way). It has no parameters.
        """
        if self._criterion is None:
            if self.criterion_cfg is None:
                raise M2FConfigError("M2FHead.loss() needs criterion=dict(type='M2FCriterion', ...) in the head's "
                                     'config; this head was built for inference')
            import m2f_mm.models.criterion  # noqa: F401  registers M2FCriterion
            # object.__setattr__ bypasses nn.Module's sub-module registration on purpose.
            object.__setattr__(self, '_criterion', MODELS.build(self.criterion_cfg))
        return self._criterion

    # ------------------------------------------------------------------ forward
    def _check_batch(self, feats: Sequence[Tensor], batch_data_samples) -> None:
        if batch_data_samples:
            meta = batch_data_samples[0].metainfo
            shape = meta.get('batch_input_shape', meta.get('img_shape'))
            if shape is not None:
                check_input_size(int(shape[0]), int(shape[1]))
        elif len(feats) and feats[0].dim() == 4:  # without metas: the finest map's configured stride
            stride = self.pixel_decoder.strides[0]
            check_input_size(feats[0].shape[-2] * stride, feats[0].shape[-1] * stride)

    def _predict(self, query: Tensor, mask_features: Tensor) -> Tuple[Tensor, Tensor]:
        """query: [B, Q, D] (decoder-normed), mask_features: [B, E, h, w] ->
        (cls logits [B, Q, C+1], mask logits [B, Q, h, w])."""
        mask = torch.einsum('bqc,bchw->bqhw', self.mask_embed(query), mask_features)
        return self.class_embed(query), mask

    def forward(self, feats: Sequence[Tensor], batch_data_samples=None, *,
                masks_of: str = 'every_set') -> Tuple[List[Tensor], List[Optional[Tensor]]]:
        """
        Args:
            feats: backbone maps [B, C_i, H_i, W_i], strides 4, 8, 16, 32.
            batch_data_samples: optional; only ``batch_input_shape`` is read (size check).
            masks_of: ``'every_set'``: the stride-4 mask logits [B, Q, h, w] of every set (the dense
                order); ``'last_set'``: of the final set only (inference), the others None; ``'factors'``:
                every set as :class:`~m2f_mm.models.factored_masks.FactoredMasks` (its mask embeddings
                and the per-pixel embeddings; training: the criterion computes only the logits it uses).
                With ``'last_set'`` / ``'factors'`` the attention masks of the decoder layers come from
                the per-pixel embeddings resized once per attended size and dotted with each set's mask
                embeddings, instead of from [B, Q, h, w] logits resized per layer: the same logits
                (resizing is linear and commutes with the dot product), at 1/64, 1/16 and 1/4 of the
                stride-4 cost.

        Returns:
            cls_logits_per_set: num_decoder_layers + 1 tensors [B, Q, C+1].
            mask_logits_per_set: num_decoder_layers + 1 entries (see masks_of).
            Set 0 comes from the learnable queries before any layer; the last is the final layer.
        """
        if masks_of not in MASKS_OF:
            raise ValueError(f'masks_of must be one of {MASKS_OF}, got {masks_of!r}')
        self._check_batch(feats, batch_data_samples)
        mask_features, multi_scale = self.pixel_decoder(feats)
        batch = mask_features.shape[0]
        memories, memory_pos, shapes = [], [], []
        for lvl, feat in enumerate(multi_scale):
            h, w = feat.shape[-2:]
            shapes.append((h, w))
            # Values get the level embedding, keys additionally the sine position (as in the paper).
            memories.append(self.input_projs[lvl](feat).flatten(2).transpose(1, 2)
                            + self.level_embed.weight[lvl].view(1, 1, -1))
            pos = self.positional_encoding(feat.new_zeros((1, h, w), dtype=torch.bool))
            memory_pos.append(pos.flatten(2).transpose(1, 2))  # [1, K_l, D], same for every image
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        if self.query_feat is None:
            query = torch.zeros_like(query_pos)
        else:
            query = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        if masks_of == 'every_set' or not isinstance(self.transformer_decoder, M2FTransformerDecoder):
            return self.transformer_decoder(query, query_pos, memories, memory_pos, shapes,
                                            predict=lambda q: self._predict(q, mask_features))
        num_sets = self.transformer_decoder.num_layers + 1
        embeds: List[Tensor] = []
        resized: Dict[Tuple[int, int], Tensor] = {}

        def predict(q: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
            embeds.append(self.mask_embed(q))
            last = len(embeds) == num_sets and masks_of == 'last_set'
            mask = torch.einsum('bqc,bchw->bqhw', embeds[-1], mask_features) if last else None
            return self.class_embed(q), mask

        def attention_logits(size: Tuple[int, int]) -> Tensor:
            if size not in resized:
                resized[size] = F.interpolate(mask_features.detach(), size=size, mode='bilinear', align_corners=False)
            return torch.einsum('bqc,bchw->bqhw', embeds[-1].detach(), resized[size])

        cls_sets, mask_sets = self.transformer_decoder(query, query_pos, memories, memory_pos, shapes,
                                                       predict=predict, attention_logits=attention_logits)
        if masks_of == 'factors':
            mask_sets = [FactoredMasks(embed, mask_features) for embed in embeds]
        return cls_sets, mask_sets

    # ------------------------------------------------------------------ training
    def get_targets(self, batch_data_samples, device: torch.device) -> Tuple[List[Tensor], List[Tensor]]:
        """Per image (labels LongTensor[G], masks BoolTensor[G, H, W]) at the padded input size.

        Panoptic / instance samples (``gt_instances``, optional ``gt_sem_seg`` for stuff) go
        through ``panoptic_targets``; samples with only ``gt_sem_seg`` through ``semantic_targets``.
        """
        from m2f_mm.models.targets import panoptic_targets, semantic_targets
        labels_list, masks_list = [], []
        for sample in batch_data_samples:
            if 'batch_input_shape' not in sample.metainfo:
                raise KeyError('training samples need metainfo batch_input_shape (the padded input size, which '
                               'the data preprocessor sets): the targets are padded to it')
            pad_shape = tuple(sample.metainfo['batch_input_shape'])
            sem_seg = sample.gt_sem_seg.sem_seg.to(device)[0] if 'gt_sem_seg' in sample else None
            if sem_seg is not None and pad_shape:
                sem_seg = _pad_to(sem_seg, pad_shape, self.ignore_index)
            if 'gt_instances' in sample:
                inst = sample.gt_instances
                masks = _masks_to_tensor(inst.masks, device)
                if pad_shape:
                    masks = _pad_to(masks, pad_shape, 0)
                labels, masks = panoptic_targets(inst.labels.to(device), masks, sem_seg, self.num_things_classes,
                                                 self.num_stuff_classes, ignore_index=self.ignore_index)
            elif sem_seg is not None:
                labels, masks = semantic_targets(sem_seg, ignore_index=self.ignore_index)
            else:
                raise ValueError('each data sample needs gt_instances and/or gt_sem_seg for training')
            labels_list.append(labels.to(device).long())
            masks_list.append(masks.to(device))
        return labels_list, masks_list

    def loss(self, feats: Sequence[Tensor], batch_data_samples) -> Dict[str, Tensor]:
        """feats: backbone maps [B, C_i, H_i, W_i] -> dict of losses (mmdet's names, see CONTRACTS)."""
        cls_sets, mask_sets = self(feats, batch_data_samples, masks_of=self.train_masks_of)
        labels, masks = self.get_targets(batch_data_samples, cls_sets[0].device)
        return self.supervised_losses(cls_sets, mask_sets, labels, masks)

    @property
    def first_supervised_set(self) -> int:
        """Index of the first prediction set the criterion sees (set 0 is unsupervised without
        learnable query features: every query predicts the same there)."""
        return 0 if self.learnable_query_features else 1

    def supervised_losses(self, cls_sets: List[Tensor], mask_sets: List[Tensor], labels: List[Tensor],
                          masks: List[Tensor]) -> Dict[str, Tensor]:
        """The criterion on the supervised prediction sets: all of them, or all but set 0 when the
        query features are not learnable (loss keys keep their set index: ``d0.*`` is absent then).

        cls_sets / mask_sets: as ``forward`` returns; labels / masks: per image LongTensor[G] and
        Tensor[G, H, W] (``get_targets``)."""
        first = self.first_supervised_set
        losses = self.criterion(cls_sets[first:], mask_sets[first:], labels, masks)
        return {shift_set_index(key, first): value for key, value in losses.items()}

    def predict(self, feats: Sequence[Tensor], batch_data_samples=None) -> Tuple[Tensor, Tensor]:
        """Last set only: (cls logits [B, Q, C+1], mask logits [B, Q, h, w]), NOT upsampled
        (the fusion head resizes in chunks to keep test-time memory bounded)."""
        cls_sets, mask_sets = self(feats, batch_data_samples, masks_of='last_set')
        return cls_sets[-1], mask_sets[-1]
