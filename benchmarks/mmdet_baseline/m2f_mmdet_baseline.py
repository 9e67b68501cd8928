"""mmdet 3.3.0's own Mask2Former, sized like an m2f_mm model config: the OpenMMLab baseline of
``tools/demo/run_demo.py --baseline mmdet`` (config: ``mmdet-mask2former_r18-q24_1xb8-2k_synthetic-panoptic.py``
beside this file).

The model dict is mmdet's own (``configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py``
from the installed mmdet: its ``Mask2FormerHead``, ``MSDeformAttnPixelDecoder``, ``HungarianAssigner``
with its match costs, ``MaskPseudoSampler``, its losses and ``MaskFormerFusionHead``) with only the
sizes taken from ours: backbone, data preprocessor (without mmdet's fixed-size LSJ padding), widths,
heads, layers, queries, classes, points, loss weights and test settings. Data loading, schedule,
seed and metrics stay those of our config (mmdet's panoptic loader needs panopticapi).

mmdet's detector cannot produce semantic segmentation (its fusion head raises), so
:class:`M2FDemoMMDetMask2Former` adds the paper's semantic inference (per-pixel sum over queries of
class probability x mask probability, m2f_mm's ``semantic_inference``) on mmdet's own mask logits,
resized the way mmdet's fusion head resizes them; panoptic and instance results are mmdet's.

The config's model is ``dict(type='M2FMMDetBaseline', module=<our model>)``: m2f_mm's config
resolution fills ``module``'s class counts from the data (as for a TTA wrapper), and
:func:`build_mmdet_baseline` turns the resolved model into mmdet's at build time. ``tools/train.py``
finds both through ``custom_imports``, with this folder on PYTHONPATH: this module is benchmark code,
not part of the installed package (it subclasses mmdet's detector, which m2f_mm never does).
Shape legend: B images, Q queries, C classes, H x W padded input, H' x W' original image.
"""
import copy
import os.path as osp

import mmdet
import torch.nn.functional as F
from mmdet.models.detectors import Mask2Former
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict
from mmengine.structures import PixelData

from m2f_mm.models.fusion import semantic_inference

MMDET_CONFIG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former',
                        'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py')
MODEL_TYPE = 'M2FDemoMMDetMask2Former'
BUILDER_TYPE = 'M2FMMDetBaseline'


@MODELS.register_module(name=MODEL_TYPE)
class M2FDemoMMDetMask2Former(Mask2Former):
    """mmdet's ``Mask2Former`` + the paper's semantic inference on its outputs (see module docstring)."""

    def predict(self, batch_inputs, batch_data_samples, rescale: bool = True):
        feats = self.extract_feat(batch_inputs)
        # cls [B, Q, C+1], masks [B, Q, H, W] (mmdet's head upsamples to the padded input)
        cls_results, mask_results = self.panoptic_head.predict(feats, batch_data_samples)
        results = self.panoptic_fusion_head.predict(cls_results, mask_results, batch_data_samples, rescale=rescale)
        samples = self.add_pred_to_datasample(batch_data_samples, results)
        for sample, cls, masks in zip(samples, cls_results, mask_results):
            img_h, img_w = sample.metainfo['img_shape'][:2]
            masks = masks[:, :img_h, :img_w]  # mmdet's fusion head: crop, then resize to ori_shape
            if rescale:
                out_hw = tuple(sample.metainfo['ori_shape'][:2])
                masks = F.interpolate(masks[:, None], size=out_hw, mode='bilinear', align_corners=False)[:, 0]
            sample.pred_sem_seg = PixelData(sem_seg=semantic_inference(cls, masks).argmax(0)[None])
        return samples


def _resize_layer(layer_cfg: ConfigDict, ours: dict, num_levels: int = None) -> None:
    """mmdet's self_attn_cfg / cross_attn_cfg / ffn_cfg to our typed layer keywords' sizes."""
    for key in ('self_attn_cfg', 'cross_attn_cfg'):
        if key in layer_cfg:
            layer_cfg[key].update(embed_dims=ours['embed_dims'], num_heads=ours['num_heads'])
            if num_levels is not None:
                layer_cfg[key].update(num_levels=ours.get('num_levels', num_levels),
                                      num_points=ours.get('num_points', layer_cfg[key].get('num_points', 4)))
    layer_cfg.ffn_cfg.update(embed_dims=ours['embed_dims'], feedforward_channels=ours['feedforward_channels'])


def mmdet_model(mine: dict) -> dict:
    """mmdet's Mask2Former model dict with the sizes of ``mine`` (an M2FDetector model config whose
    class counts are resolved)."""
    model = copy.deepcopy(Config.fromfile(MMDET_CONFIG).model)
    mine = ConfigDict(copy.deepcopy(dict(mine)))
    head, mine_head = model.panoptic_head, mine.panoptic_head
    criterion = dict(mine_head.criterion)
    unsupported = set(criterion) - {'type', 'num_points', 'oversample_ratio', 'importance_sample_ratio',
                                    'cls_weight', 'mask_weight', 'dice_weight', 'no_object_weight'}
    if unsupported or mine_head.get('learnable_query_features', True) is False or \
            mine_head.transformer_decoder.get('use_masked_attention', True) is False or \
            mine_head.transformer_decoder.get('feature_levels') is not None:
        raise ValueError('the mmdet baseline mirrors the paper model only; this model changes '
                         f'{sorted(unsupported) or "an ablation switch"}. Fix: build it from the main-job model')
    model.type = MODEL_TYPE
    model.data_preprocessor = copy.deepcopy(mine.data_preprocessor)
    model.backbone = copy.deepcopy(mine.backbone)
    num_things, num_stuff = mine_head.num_things_classes, mine_head.num_stuff_classes
    head.update(in_channels=list(mine_head.in_channels), feat_channels=mine_head.feat_channels,
                out_channels=mine_head.out_channels, num_things_classes=num_things, num_stuff_classes=num_stuff,
                num_queries=mine_head.num_queries, num_transformer_feat_level=mine_head.num_transformer_feat_level)
    head.pixel_decoder.norm_cfg = copy.deepcopy(mine_head.pixel_decoder.norm_cfg)
    head.pixel_decoder.encoder.num_layers = mine_head.pixel_decoder.encoder.num_layers
    _resize_layer(head.pixel_decoder.encoder.layer_cfg, mine_head.pixel_decoder.encoder.layer_cfg, num_levels=3)
    head.pixel_decoder.positional_encoding.num_feats = mine_head.pixel_decoder.positional_encoding.num_feats
    head.positional_encoding.num_feats = mine_head.positional_encoding.num_feats
    head.transformer_decoder.num_layers = mine_head.transformer_decoder.num_layers
    _resize_layer(head.transformer_decoder.layer_cfg, mine_head.transformer_decoder.layer_cfg)
    head.loss_cls.update(loss_weight=criterion.get('cls_weight', 2.0),
                         class_weight=[1.0] * (num_things + num_stuff) + [criterion.get('no_object_weight', 0.1)])
    head.loss_mask.loss_weight = criterion.get('mask_weight', 5.0)
    head.loss_dice.loss_weight = criterion.get('dice_weight', 5.0)
    model.panoptic_fusion_head.update(num_things_classes=num_things, num_stuff_classes=num_stuff)
    model.train_cfg.update(num_points=criterion.get('num_points', 12544),
                           oversample_ratio=criterion.get('oversample_ratio', 3.0),
                           importance_sample_ratio=criterion.get('importance_sample_ratio', 0.75))
    costs = model.train_cfg.assigner.match_costs  # ClassificationCost, CrossEntropyLossCost, DiceCost
    for cost, key, default in zip(costs, ('cls_weight', 'mask_weight', 'dice_weight'), (2.0, 5.0, 5.0)):
        cost.weight = criterion.get(key, default)
    test_cfg = dict(mine.test_cfg)
    test_cfg['semantic_on'] = False  # mmdet's fusion head refuses it; predict() adds it (module docstring)
    model.test_cfg = test_cfg
    model.init_cfg = None
    return model.to_dict()


@MODELS.register_module(name=BUILDER_TYPE)
def build_mmdet_baseline(module: dict, data_preprocessor: dict = None) -> M2FDemoMMDetMask2Former:
    """mmdet's Mask2Former sized like ``module`` (our resolved model config). ``data_preprocessor``:
    the one mmengine's runner offers every model; ``module`` brings its own."""
    return MODELS.build(ConfigDict(mmdet_model(module)))
