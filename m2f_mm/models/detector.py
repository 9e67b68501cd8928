"""Mask2Former as an mmdet detector: backbone (+ neck) -> M2FHead -> M2FFusionHead.

Shape legend:
    B       batch
    Q       queries
    C       classes (things + stuff); index C = no-object
    H, W    padded batch input (``batch_input_shape``); h, w = H/4, W/4
    H', W'  output size (original image size when rescale=True)

Class-count check: ``M2FDetector.check_dataset_meta(metainfo)`` raises when the model's thing /
stuff class counts differ from the dataset's. ``M2FClassCheckHook`` (``m2f_mm/engine/hooks/class_check.py``)
calls it in before_train / before_val / before_test, i.e. before the first training step.
"""
from typing import Dict, List, Optional, Tuple

from mmdet.models.detectors import SingleStageDetector
from mmdet.structures import SampleList
from mmengine.structures import PixelData
from torch import Tensor

from m2f_mm.errors import M2FConfigError
from m2f_mm.models.head import check_input_size
from m2f_mm.registry import MODELS, register_det_model


def check_class_counts(num_things: int, num_stuff: int, metainfo: Optional[dict]) -> None:
    """Raise M2FConfigError (a ValueError) if a dataset's metainfo disagrees with the model's class counts.

    Panoptic datasets carry ``thing_classes`` / ``stuff_classes``; instance datasets only
    ``classes`` (all things, so it must equal num_things + num_stuff). Unknown layouts pass.
    """
    if not metainfo:
        return
    if 'thing_classes' in metainfo and 'stuff_classes' in metainfo:
        got = (len(metainfo['thing_classes']), len(metainfo['stuff_classes']))
        if got != (num_things, num_stuff):
            raise M2FConfigError(f'class-count mismatch: the model has {num_things} thing + {num_stuff} stuff classes, '
                                 f'the dataset has {got[0]} thing + {got[1]} stuff classes; set '
                                 f'num_things_classes / num_stuff_classes in panoptic_head and panoptic_fusion_head')
    elif metainfo.get('classes') is not None:
        got = len(metainfo['classes'])
        if got != num_things + num_stuff:
            raise M2FConfigError(f'class-count mismatch: the model has {num_things} + {num_stuff} = '
                                 f'{num_things + num_stuff} classes, the dataset has {got}')


@register_det_model
class M2FDetector(SingleStageDetector):
    """Config keys: backbone, neck (optional), panoptic_head (M2FHead), panoptic_fusion_head
    (M2FFusionHead), train_cfg, test_cfg, data_preprocessor, init_cfg.

    Predictions land in ``pred_panoptic_seg``, ``pred_instances`` and ``pred_sem_seg``.
    """

    def __init__(self, *, backbone: Dict, neck: Optional[Dict] = None, panoptic_head: Optional[Dict] = None,
                 panoptic_fusion_head: Optional[Dict] = None, train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None, data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        # Build the preprocessor through mmdet's registry so DetDataPreprocessor resolves even when
        # the default scope is not 'mmdet' (BaseModel would use mmengine's root registry).
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        # Skip SingleStageDetector.__init__: it would build bbox_head; we build our own heads.
        super(SingleStageDetector, self).__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if panoptic_head is None:
            raise M2FConfigError('M2FDetector needs panoptic_head')
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        head_cfg = dict(panoptic_head)
        if head_cfg.pop('test_cfg', None) is not None:  # the head returns logits; the fusion head reads them
            raise M2FConfigError('panoptic_head.test_cfg: the head reads no test-time settings; put them in '
                                 'model.test_cfg (the fusion head reads it)')
        head_cfg.update(train_cfg=train_cfg)
        self.panoptic_head = MODELS.build(head_cfg)
        self.num_things_classes = self.panoptic_head.num_things_classes
        self.num_stuff_classes = self.panoptic_head.num_stuff_classes
        self.num_classes = self.panoptic_head.num_classes
        self.panoptic_fusion_head = self._build_fusion_head(panoptic_fusion_head, test_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def _build_fusion_head(self, cfg: Optional[Dict], test_cfg: Optional[Dict]):
        """Build the fusion head (M2FFusionHead); its class counts and test_cfg are the model's."""
        if cfg is None:
            raise M2FConfigError("M2FDetector needs panoptic_fusion_head=dict(type='M2FFusionHead') (it turns the "
                                 'outputs into panoptic / instance / semantic results)')
        cfg = dict(cfg)
        cfg.setdefault('num_things_classes', self.num_things_classes)
        cfg.setdefault('num_stuff_classes', self.num_stuff_classes)
        if (cfg['num_things_classes'], cfg['num_stuff_classes']) != (self.num_things_classes, self.num_stuff_classes):
            raise M2FConfigError(f'panoptic_fusion_head has {cfg["num_things_classes"]} + {cfg["num_stuff_classes"]} '
                                 f'classes, panoptic_head {self.num_things_classes} + {self.num_stuff_classes}')
        cfg['test_cfg'] = test_cfg
        if isinstance(cfg.get('type'), str) and MODELS.get(cfg['type']) is None:
            raise KeyError(f'panoptic_fusion_head type {cfg["type"]!r} is not registered (m2f_mm registers '
                           "'M2FFusionHead'; custom_imports must name the module that registers yours)")
        return MODELS.build(cfg)

    def check_dataset_meta(self, metainfo: Optional[dict]) -> None:
        """Raise M2FConfigError (a ValueError) if ``metainfo``'s class counts differ from this model's."""
        check_class_counts(self.num_things_classes, self.num_stuff_classes, metainfo)

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """batch_inputs: [B, 3, H, W] -> backbone (+ neck) maps, strides 4..32."""
        check_input_size(batch_inputs.shape[-2], batch_inputs.shape[-1])
        return super().extract_feat(batch_inputs)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """batch_inputs: [B, 3, H, W] -> dict of losses."""
        return self.panoptic_head.loss(self.extract_feat(batch_inputs), batch_data_samples)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList, rescale: bool = True) -> SampleList:
        """batch_inputs: [B, 3, H, W] -> data samples with the enabled predictions."""
        cls_logits, mask_logits = self.panoptic_head.predict(self.extract_feat(batch_inputs), batch_data_samples)
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        results = self.panoptic_fusion_head.predict(cls_logits, mask_logits, batch_img_metas, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def add_pred_to_datasample(self, data_samples: SampleList, results_list: List[dict]) -> SampleList:
        """Copy pan_results / ins_results / sem_results into pred_panoptic_seg / pred_instances /
        pred_sem_seg (sem_seg LongTensor[1, H', W'], plus seg_logits [C, H', W'] if present)."""
        for sample, res in zip(data_samples, results_list):
            if 'pan_results' in res:
                sample.pred_panoptic_seg = res['pan_results']
            if 'ins_results' in res:
                sample.pred_instances = res['ins_results']
            if 'sem_results' in res:
                sem = res['sem_results']
                sample.pred_sem_seg = sem if isinstance(sem, PixelData) else PixelData(sem_seg=sem)
        return data_samples

    def _forward(self, batch_inputs: Tensor, batch_data_samples: Optional[SampleList] = None):
        """batch_inputs: [B, 3, H, W] -> (cls logits per set [B, Q, C+1], mask logits per set [B, Q, h, w])."""
        return self.panoptic_head(self.extract_feat(batch_inputs), batch_data_samples)
