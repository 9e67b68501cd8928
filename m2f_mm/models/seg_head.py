"""mmsegmentation front-end: the same Mask2Former head as a semantic-segmentation decode head.

Shape legend: B batch, Q queries, C classes (index C = no-object), H x W the padded input
(``pad_shape``), h x w = H/4 x W/4.

mmseg's ``EncoderDecoder`` calls ``decode_head.loss(x, data_samples, train_cfg)`` and
``decode_head.predict(x, batch_img_metas, test_cfg)`` and expects per-class scores at the padded
input size (it crops the padding and resizes to the original image itself). The ``test_cfg`` it
passes is the segmentor's own (``model.test_cfg``: its ``mode`` / ``crop_size`` / ``stride`` plus
ours, ``query_chunk_size``); its values override the head's ``decode_head.test_cfg``, and a key
neither mmseg nor the head reads is refused (:mod:`m2f_mm.models.test_config`). Everything else (pixel
decoder, masked-attention decoder, matching, losses) is :class:`M2FHead`'s, so semantic results from
mmseg and the semantic output of :class:`M2FDetector` come from one implementation.
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.head import M2FHead, refuse_training_keys
from m2f_mm.models.mmdet_compat import require_class_counts
from m2f_mm.models.fusion import fuse
from m2f_mm.models.targets import semantic_targets
from m2f_mm.models.test_config import DEFAULTS, MMSEG_SEGMENTOR_KEYS, SEMANTIC_HEAD_KEYS, TestConfig, parse
from m2f_mm.registry import register_seg_model


def semantic_class_counts(head: str, num_classes: Optional[int], kwargs: Dict) -> Dict[str, int]:
    """An mmseg head's ``num_classes`` as the things / stuff counts of the panoptic head it builds on (all stuff);
    the thing / stuff keys themselves are refused."""
    require_class_counts('decode_head', num_classes=num_classes)
    for key in ('num_things_classes', 'num_stuff_classes'):
        if key in kwargs:
            raise M2FConfigError(f'{head} takes num_classes, not {key} (semantic segmentation has no thing/stuff split)')
    return dict(num_things_classes=0, num_stuff_classes=num_classes)


def head_test_cfg(head, test_cfg: Optional[Dict]) -> TestConfig:
    """A decode head's own ``decode_head.test_cfg`` (the keys in ``head.test_keys``), checked."""
    return parse(test_cfg, where='decode_head.test_cfg', reader=type(head).__name__, keys=head.test_keys)


def predict_test_cfg(head, test_cfg: Optional[Dict]) -> TestConfig:
    """The settings of one ``predict`` call: the segmentor's ``test_cfg`` (mmseg passes ``model.test_cfg``;
    its own keys are mmseg's) over the head's ``decode_head.test_cfg``."""
    return parse(test_cfg, where='model.test_cfg', reader=type(head).__name__, keys=head.test_keys,
                 passthrough=MMSEG_SEGMENTOR_KEYS, base=getattr(head, 'test_cfg', DEFAULTS))


def set_mmseg_attributes(head, num_classes: int, align_corners: bool) -> None:
    """The three attributes mmseg's EncoderDecoder reads from a decode head."""
    head.out_channels = num_classes
    head.align_corners = align_corners
    head.threshold = None


@register_seg_model
class M2FSegHead(M2FHead):
    """Mask2Former decode head for mmseg's ``EncoderDecoder``.

    Args:
        num_classes: semantic classes C (no-object is added internally).
        align_corners: read by mmseg when it resizes our scores to the original image.
        ignore_index: label of pixels that belong to no segment.
        test_cfg: ``query_chunk_size`` (see :class:`~m2f_mm.models.test_config.TestConfig`); the
            segmentor's ``model.test_cfg`` passed to :meth:`predict` overrides it.
        **kwargs: :class:`M2FHead` arguments (``in_channels``, ``feat_channels``, ``num_queries``,
            ``pixel_decoder``, ``transformer_decoder``, ``criterion`` ...).
    """

    test_keys = SEMANTIC_HEAD_KEYS  # the test_cfg keys read: semantic scores need no fusion settings

    def __init__(self, *, num_classes: Optional[int], align_corners: bool = False, ignore_index: int = 255,
                 test_cfg: Optional[Dict] = None, **kwargs) -> None:
        settings = head_test_cfg(self, test_cfg)  # checked before the modules are built
        super().__init__(**semantic_class_counts(type(self).__name__, num_classes, kwargs), ignore_index=ignore_index,
                         **kwargs)
        set_mmseg_attributes(self, num_classes, align_corners)
        self.test_cfg: TestConfig = settings

    def loss(self, x: Sequence[Tensor], batch_data_samples: List, train_cfg: Dict = None) -> Dict[str, Tensor]:
        """x: backbone maps [B, C_i, H_i, W_i]; samples carry ``gt_sem_seg`` [1, H, W] (already padded
        with ``ignore_index`` by mmseg's data preprocessor) -> mmdet-style loss dict. ``train_cfg``
        (mmseg's EncoderDecoder passes its own) must be empty: the settings live in ``criterion``."""
        refuse_training_keys(train_cfg, 'model.train_cfg')
        cls_sets, mask_sets = self(x, batch_data_samples, masks_of=self.train_masks_of)
        device = cls_sets[0].device
        labels, masks = [], []
        for index, sample in enumerate(batch_data_samples):
            sem_seg = sample.gt_sem_seg.data.to(device)
            if sem_seg.dim() != 3 or sem_seg.shape[0] != 1:
                raise ValueError(f'image {index}: gt_sem_seg must be [1, H, W], got {tuple(sem_seg.shape)}')
            image_labels, image_masks = semantic_targets(sem_seg[0], ignore_index=self.ignore_index)
            if image_labels.numel() and int(image_labels.max()) >= self.num_classes:
                raise M2FConfigError(f'image {index} ({sample.metainfo.get("img_path", "?")}): gt_sem_seg has class '
                                     f'{int(image_labels.max())}, but num_classes={self.num_classes}; set the head\'s '
                                     f'num_classes to the dataset\'s class count or map the label to {self.ignore_index}')
            labels.append(image_labels.long())
            masks.append(image_masks)
        return self.supervised_losses(cls_sets, mask_sets, labels, masks)

    def predict(self, x: Sequence[Tensor], batch_img_metas: List[dict], test_cfg: Dict = None) -> Tensor:
        """x: backbone maps -> per-class scores [B, C, H, W] at the padded input size. ``test_cfg``: the
        segmentor's (mmseg passes ``model.test_cfg``), over ``decode_head.test_cfg``.

        Mask logits are upsampled a chunk of queries at a time and accumulated, so the [Q, H, W]
        full-resolution stack never exists at once; each image accumulates straight into its slice
        of the returned batch (no per-image copies to stack).
        """
        chunk = predict_test_cfg(self, test_cfg).query_chunk_size
        cls_logits, mask_logits = M2FHead.predict(self, x)
        meta = batch_img_metas[0]
        size = tuple(meta.get('pad_shape', meta['img_shape']))[:2]
        scores = mask_logits.new_zeros((len(cls_logits), self.num_classes) + size, dtype=torch.float32)
        for b, (cls_b, mask_b) in enumerate(zip(cls_logits, mask_logits)):
            fuse(cls_b, mask_b, 0, ('semantic', ), pad_hw=size, chunk=chunk, semantic_out=scores[b])
        return scores
