"""Mask2Former inference: panoptic, instance and semantic results from one set of outputs.

Shape legend: Q queries, C classes (things first, then stuff; index C = no-object), K kept queries,
N instances, h x w stride-4 mask logits of the padded batch, H x W the padded batch input
(``batch_input_shape``), H' x W' the output size (``ori_shape`` with rescale, else ``img_shape``).

Resizing reproduces mmdet 3.3 exactly (bilinear, align_corners=False): h x w -> H x W, crop
``[:img_h, :img_w]``, -> ``ori_shape``. Unlike mmdet, queries are resized in chunks of
``test_cfg.query_chunk_size`` and only the queries a task needs are resized (kept queries for
panoptic, the top-k queries for instance, all for semantic), so memory is O(chunk x H x W + H' x W')
(+ the N x H' x W' instance masks returned) instead of O(Q x H x W); per-segment areas come from
``bincount`` instead of a Python loop.

Differences from mmdet's ``MaskFormerFusionHead`` (deliberate, tested in tests/parity/test_mmdet_fusion.py):
- ``filter_low_score=True`` (what the paper's code always does and mmdet's Mask2Former configs set):
  a segment whose pixels all have sigmoid < 0.5 after the filter is dropped *without consuming an
  instance id*, as in facebookresearch/Mask2Former ``panoptic_inference`` (``mask.sum() > 0``);
  mmdet increments the instance id anyway, leaving a gap. With ``filter_low_score=False`` (mmdet's
  default) the panoptic map equals mmdet's bit for bit.
- Instance results are sorted by class probability (mmdet: ``topk(sorted=False)``, unspecified order);
  the selection itself -- top-k over all (query, class) pairs, *then* keep thing classes -- is the
  paper's and mmdet's (the paper filters after top-k when panoptic is on). Boxes come from
  ``mask2bbox`` (the paper's code returns zero boxes). ``max_per_image`` above Q x C keeps every
  pair (mmdet's ``topk`` raises). So up to max_per_image thing instances come back, fewer when stuff
  pairs rank in the top-k (the paper's "top-100 over (query, thing class) pairs" is read as its code
  does it); the paper filters things only when panoptic is on, we always do (instance-only datasets
  have no stuff classes, so this is the same there).
- Semantic inference is supported (mmdet raises); it is the paper's ``einsum('qc,qhw->chw')`` over
  the processed mask logits, accumulated chunk-wise (it holds C x H' x W' scores, like the paper).

The test_cfg keys, their defaults and their checks are :class:`~m2f_mm.models.test_config.TestConfig`'s
(mmdet's keys, plus ``query_chunk_size`` and ``semantic_scores``: also return ``seg_logits``).
Mask logits are processed in float32 whatever their dtype (AMP outputs).
"""
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures.mask import mask2bbox
from mmengine.model import BaseModule
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from ..registry import register_model
from .mmdet_compat import require_class_counts
from .test_config import DEFAULTS, TestConfig, parse


class _Panoptic:
    """Chunk-wise panoptic fusion over the kept queries (fed in ascending query order)."""

    def __init__(self, cls_logits: Tensor, num_things: int, object_mask_thr: float, iou_thr: float,
                 filter_low_score: bool) -> None:
        num_classes = cls_logits.shape[-1] - 1
        scores, labels = F.softmax(cls_logits.float(), dim=-1).max(-1)
        keep = labels.ne(num_classes) & (scores > object_mask_thr)
        self.kept = keep.nonzero()[:, 0]                     # [K] query indices
        self.slot = torch.full_like(labels, -1)
        self.slot[self.kept] = torch.arange(len(self.kept), device=labels.device)
        self.scores, self.labels = scores[self.kept], labels[self.kept]
        self.num_things, self.num_classes, self.iou_thr = num_things, num_classes, iou_thr
        self.filter_low_score = filter_low_score
        self.orig_area = torch.zeros(len(self.kept), dtype=torch.long, device=labels.device)
        self.best: Optional[Tensor] = None                   # [H',W'] best score x prob so far
        self.best_idx: Optional[Tensor] = None               # [H',W'] its kept slot
        self.best_high: Optional[Tensor] = None              # [H',W'] its prob >= 0.5

    def update(self, query_idx: Tensor, logits: Tensor) -> None:
        """query_idx [q] ascending, logits [q,H',W'] resized mask logits of those queries."""
        slots = self.slot[query_idx]
        sel = slots >= 0
        if not bool(sel.any()):
            return
        slots = slots[sel]
        probs = logits[sel].sigmoid()                        # [k,H',W']
        self.orig_area[slots] = (probs >= 0.5).flatten(1).sum(1)
        chunk_best, chunk_arg = (self.scores[slots].view(-1, 1, 1) * probs).max(0)
        high = probs.gather(0, chunk_arg[None])[0] >= 0.5
        chunk_slot = slots[chunk_arg]
        if self.best is None:
            self.best, self.best_idx, self.best_high = chunk_best, chunk_slot, high
            return
        better = chunk_best > self.best                      # strict: earlier query wins ties, like argmax
        self.best = torch.where(better, chunk_best, self.best)
        self.best_idx = torch.where(better, chunk_slot, self.best_idx)
        self.best_high = torch.where(better, high, self.best_high)

    def finish(self, shape: Tuple[int, int]) -> Tensor:
        """Returns IntTensor[H',W']: label + instance_id * INSTANCE_OFFSET, VOID = C."""
        device = self.labels.device
        if len(self.kept) == 0 or self.best_idx is None:
            return torch.full(shape, self.num_classes, dtype=torch.int32, device=device)
        k = len(self.kept)
        idx = self.best_idx.flatten()
        mask_area = torch.bincount(idx, minlength=k)
        accept = (mask_area > 0) & (self.orig_area > 0)
        accept &= ~(mask_area.double() / self.orig_area.clamp(min=1).double() < self.iou_thr)
        if self.filter_low_score:                            # paper: the filtered mask must be non-empty
            accept &= torch.bincount(idx[self.best_high.flatten()], minlength=k) > 0
        is_thing = self.labels < self.num_things
        inst_id = torch.cumsum((accept & is_thing).long(), 0)
        seg_id = torch.where(is_thing, self.labels + inst_id * INSTANCE_OFFSET, self.labels)
        seg_id = torch.where(accept, seg_id, torch.full_like(seg_id, self.num_classes))
        pan = seg_id.int()[self.best_idx]
        if self.filter_low_score:
            pan[~self.best_high] = self.num_classes
        return pan


class _Instance:
    """Top-k (query, class) pairs, thing classes kept; masks and mask scores filled chunk-wise."""

    def __init__(self, cls_logits: Tensor, num_things: int, max_per_image: int) -> None:
        num_queries, num_classes = cls_logits.shape[0], cls_logits.shape[1] - 1
        probs = F.softmax(cls_logits.float(), dim=-1)[:, :-1].flatten()      # [Q*C]
        top_scores, top_idx = probs.topk(min(max_per_image, num_queries * num_classes))
        labels = top_idx % num_classes
        thing = labels < num_things
        self.scores, self.labels = top_scores[thing], labels[thing]           # [N]
        self.query = top_idx[thing] // num_classes                            # [N]
        self.queries = torch.unique(self.query)                               # [U] ascending
        self.mask_scores = torch.zeros_like(self.scores)
        self.masks: Optional[Tensor] = None

    def update(self, query_idx: Tensor, logits: Tensor) -> None:
        """query_idx [q] ascending, logits [q,H',W']."""
        hit = (self.query[:, None] == query_idx[None, :])                    # [N,q]
        rows, cols = hit.nonzero(as_tuple=True)
        if self.masks is None:
            self.masks = logits.new_zeros((len(self.query), ) + logits.shape[-2:], dtype=torch.bool)
        if len(rows) == 0:
            return
        used = torch.unique(cols)
        # One query at a time: the temporaries are one H' x W' map, not a chunk of them in float (at 3072 px,
        # 16 queries: 0.6 GB each). Same formula: mean sigmoid over the mask's positive pixels.
        positive = logits.new_empty((len(used), ) + logits.shape[-2:], dtype=torch.bool)
        mscore = logits.new_empty(len(used), dtype=torch.float32)
        for j, col in enumerate(used.tolist()):
            torch.gt(logits[col], 0, out=positive[j])
            mscore[j] = (logits[col].sigmoid().mul_(positive[j]).sum() / (positive[j].sum() + 1e-6)).float()
        pos = torch.searchsorted(used, cols)
        self.masks[rows] = positive[pos]
        self.mask_scores[rows] = mscore[pos]

    def finish(self, shape: Tuple[int, int]) -> InstanceData:
        masks = self.masks if self.masks is not None else torch.zeros(
            (len(self.query), ) + tuple(shape), dtype=torch.bool, device=self.scores.device)
        return InstanceData(masks=masks, bboxes=mask2bbox(masks), scores=self.scores * self.mask_scores,
                            labels=self.labels)


class _Semantic:
    """sum_q softmax(cls)[q, :C] * sigmoid(mask_q), accumulated in place (into ``out`` when given)."""

    def __init__(self, cls_logits: Tensor, out: Optional[Tensor] = None) -> None:
        self.probs = F.softmax(cls_logits.float(), dim=-1)[:, :-1]           # [Q,C]
        self.sem: Optional[Tensor] = out                                      # [C,H',W']

    def update(self, query_idx: Tensor, logits: Tensor) -> None:
        flat = logits.sigmoid().flatten(1)                                    # [q,H'W']
        if self.sem is None:
            self.sem = logits.new_zeros((self.probs.shape[1], ) + logits.shape[-2:])
        self.sem.view(self.sem.shape[0], -1).addmm_(self.probs[query_idx].t(), flat)

    def finish(self, shape: Tuple[int, int]) -> Tensor:
        return self.sem if self.sem is not None else self.probs.new_zeros((self.probs.shape[1], ) + shape)


def resized_chunks(mask_logits: Tensor, query_idx: Tensor, chunk: int, pad_hw: Optional[Sequence[int]],
                   img_hw: Optional[Sequence[int]], out_hw: Optional[Sequence[int]]
                   ) -> Iterator[Tuple[Tensor, Tensor]]:
    """Yields (query_idx[q], logits[q,H',W']) for chunks of ``query_idx`` of mask_logits[Q,h,w]:
    resized to pad_hw, cropped to img_hw, resized to out_hw (each step skipped when None)."""
    for start in range(0, len(query_idx), chunk):
        idx = query_idx[start:start + chunk]
        x = mask_logits[idx].float()[None]                                   # [1,q,h,w]
        if pad_hw is not None:
            x = F.interpolate(x, size=tuple(pad_hw), mode='bilinear', align_corners=False)
        x = x[0]
        if img_hw is not None:
            x = x[:, :img_hw[0], :img_hw[1]]
        if out_hw is not None:
            x = F.interpolate(x[:, None], size=tuple(out_hw), mode='bilinear', align_corners=False)[:, 0]
        yield idx, x


FUSIONS = ('panoptic', 'instance', 'semantic')


def fuse(cls_logits: Tensor, mask_logits: Tensor, num_things: int, tasks: Sequence[str] = FUSIONS, *,
         pad_hw: Optional[Sequence[int]] = None, img_hw: Optional[Sequence[int]] = None,
         out_hw: Optional[Sequence[int]] = None, object_mask_thr: float = DEFAULTS.object_mask_thr,
         iou_thr: float = DEFAULTS.iou_thr, filter_low_score: bool = DEFAULTS.filter_low_score,
         max_per_image: int = DEFAULTS.max_per_image, chunk: int = DEFAULTS.query_chunk_size,
         semantic_out: Optional[Tensor] = None) -> Dict[str, object]:
    """One image's results for ``tasks`` from one pass over its queries' resized masks.

    Every query a task needs is resized once, ``chunk`` queries at a time (h x w -> ``pad_hw``, crop
    to ``img_hw``, -> ``out_hw``; each step skipped when None), and fed to every requested fusion.
    ``M2FFusionHead`` (mmdet) and ``M2FSegHead`` (mmseg) both call this.

    Args:
        cls_logits: [Q, C+1]; mask_logits: [Q, h, w].
        num_things: classes [0, num_things) are things (instance ids), the rest stuff.
        tasks: a subset of ``('panoptic', 'instance', 'semantic')``.
        semantic_out: optional [C, H', W'] fp32 buffer the semantic scores accumulate into.

    Returns:
        ``{'panoptic': IntTensor[H', W'] (label + instance * INSTANCE_OFFSET, VOID = C),
        'instance': InstanceData(masks [N, H', W'] bool, bboxes [N, 4], scores [N], labels [N]),
        'semantic': Tensor[C, H', W'] (sum over queries of class probability x mask probability)}``,
        the requested keys only.
    """
    unknown = set(tasks) - set(FUSIONS)
    if unknown:
        raise ValueError(f'unknown fusion tasks {sorted(unknown)}; choose from {FUSIONS}')
    accs: Dict[str, object] = {}
    needed = []
    if 'panoptic' in tasks:
        accs['panoptic'] = _Panoptic(cls_logits, num_things, object_mask_thr, iou_thr, filter_low_score)
        needed.append(accs['panoptic'].kept)
    if 'instance' in tasks:
        accs['instance'] = _Instance(cls_logits, num_things, max_per_image)
        needed.append(accs['instance'].queries)
    if 'semantic' in tasks:
        accs['semantic'] = _Semantic(cls_logits, semantic_out)
        needed.append(torch.arange(cls_logits.shape[0], device=cls_logits.device))
    queries = torch.unique(torch.cat(needed)) if needed else cls_logits.new_zeros(0, dtype=torch.long)
    for idx, logits in resized_chunks(mask_logits, queries, chunk, pad_hw, img_hw, out_hw):
        for acc in accs.values():
            acc.update(idx, logits)
    shape = tuple(out_hw or img_hw or pad_hw or mask_logits.shape[-2:])[:2]
    return {task: acc.finish(shape) for task, acc in accs.items()}


def panoptic_inference(cls_logits: Tensor, mask_logits: Tensor, num_things: int,
                       object_mask_thr: float = DEFAULTS.object_mask_thr, iou_thr: float = DEFAULTS.iou_thr,
                       filter_low_score: bool = DEFAULTS.filter_low_score,
                       chunk: int = DEFAULTS.query_chunk_size) -> Tensor:
    """:func:`fuse`'s panoptic map of masks already at output size: [Q,C+1], [Q,H,W] -> IntTensor [H,W]."""
    return fuse(cls_logits, mask_logits, num_things, ('panoptic', ), object_mask_thr=object_mask_thr,
                iou_thr=iou_thr, filter_low_score=filter_low_score, chunk=chunk)['panoptic']


def instance_inference(cls_logits: Tensor, mask_logits: Tensor, num_things: int,
                       max_per_image: int = DEFAULTS.max_per_image,
                       chunk: int = DEFAULTS.query_chunk_size) -> InstanceData:
    """:func:`fuse`'s instances: [Q,C+1], [Q,H,W] -> InstanceData(masks [N,H,W] bool, bboxes, scores, labels)."""
    return fuse(cls_logits, mask_logits, num_things, ('instance', ), max_per_image=max_per_image,
                chunk=chunk)['instance']


def semantic_inference(cls_logits: Tensor, mask_logits: Tensor, chunk: int = DEFAULTS.query_chunk_size) -> Tensor:
    """:func:`fuse`'s semantic scores: [Q,C+1], [Q,H,W] -> per-class scores [C,H,W] (argmax for labels)."""
    return fuse(cls_logits, mask_logits, 0, ('semantic', ), chunk=chunk)['semantic']


@register_model
class M2FFusionHead(BaseModule):
    """Turns the last decoder set's (cls_logits, mask_logits) into results; see the module docstring.

    ``test_cfg`` (the model's, as :class:`M2FDetector` hands it over) is parsed once into
    ``self.test_cfg``, a :class:`~m2f_mm.models.test_config.TestConfig`; unknown keys are refused.
    """

    def __init__(self, num_things_classes: Optional[int] = 80, num_stuff_classes: Optional[int] = 53,
                 test_cfg: Optional[dict] = None,
                 loss_panoptic: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss_panoptic is not None:  # mmdet's configs carry loss_panoptic=None; there is no such loss
            raise ValueError(f'panoptic_fusion_head.loss_panoptic={loss_panoptic}: the fusion head has no loss; '
                             'remove the key (or set it to None)')
        self.test_cfg: TestConfig = parse(test_cfg, where='test_cfg', reader=type(self).__name__)
        require_class_counts('panoptic_fusion_head', num_things_classes=num_things_classes,
                             num_stuff_classes=num_stuff_classes)
        self.num_things_classes, self.num_stuff_classes = num_things_classes, num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes

    def loss(self, **kwargs) -> dict:
        """The fusion head has no loss."""
        return dict()

    def predict(self, cls_logits: Tensor, mask_logits: Tensor, batch_img_metas: List[dict],
                rescale: bool = True) -> List[dict]:
        """cls_logits [B,Q,C+1], mask_logits [B,Q,h,w] -> per image dict with the enabled subset of
        ``pan_results``, ``ins_results``, ``sem_results`` (CONTRACTS.md)."""
        cfg = self.test_cfg
        results = []
        for cls_b, mask_b, meta in zip(cls_logits, mask_logits, batch_img_metas):
            if 'batch_input_shape' not in meta:
                raise KeyError('image metainfo needs batch_input_shape (the padded input size, which the data '
                               'preprocessor sets): the mask logits are cropped by it before resizing')
            pad_hw = tuple(meta['batch_input_shape'])[:2]
            fused = fuse(cls_b, mask_b, self.num_things_classes, cfg.tasks, pad_hw=pad_hw,
                         img_hw=tuple(meta.get('img_shape', pad_hw))[:2],
                         out_hw=tuple(meta['ori_shape'][:2]) if rescale else None,
                         object_mask_thr=cfg.object_mask_thr, iou_thr=cfg.iou_thr,
                         filter_low_score=cfg.filter_low_score, max_per_image=cfg.max_per_image,
                         chunk=cfg.query_chunk_size)
            result = {}
            if 'panoptic' in fused:
                result['pan_results'] = PixelData(sem_seg=fused['panoptic'][None])
            if 'instance' in fused:
                result['ins_results'] = fused['instance']
            if 'semantic' in fused:
                result['sem_results'] = PixelData(sem_seg=fused['semantic'].argmax(0)[None])
                if cfg.semantic_scores:
                    result['sem_results'].seg_logits = fused['semantic']
            results.append(result)
        return results
