"""Each MaskFormer config reproduces its mmdet 3.3 / mmsegmentation 1.2.2 recipe, and its model has the
paper's size and exactly OpenMMLab's parameters.

As tests/parity/test_recipes.py does for Mask2Former, the test reads the same fields from both configs
and compares them: optimizer, clipping, the lr and weight decay every parameter gets (both models built
without weights, mmengine's optimizer constructor applied, the reference's names mapped to ours with the
checkpoint key table), schedule, batch, pipelines, data preprocessor, backbone and its pretrained file,
queries, classes, the head's widths, pixel decoder (transformer encoder or none), DETR decoder, losses
and matching costs, test_cfg, evaluators, parameter count. MaskFormer-specific fields are put in one
form for both sides (mmdet's module configs -> ours). Every difference is listed; the test passes only
when they are the allow-listed ones (ALLOWED, none today).

mmdet's recipes count epochs, ours iterations: an epoch is 118,000 images (7,375 iterations at 16
images, the convention of configs/_base_/schedules/schedule_50e.py), so the reference's epochs are
turned into iterations at its batch (auto_scale_lr.base_batch_size) before comparing.
"""
import functools
import os.path as osp
import sys
from typing import Dict, Optional, Tuple

import mmdet
import mmseg
import pytest
from mmengine.config import Config

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from test_recipes import _components, _effective_lr_decay, _plain, _to_ours, differences  # noqa: E402
from zoo_build import REPO, build_model, resolved  # noqa: E402

MMDET = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'maskformer')
MMSEG = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'maskformer')

# ours -> reference (file under mmdet's or mmseg's configs/maskformer)
PAIRS = {
    'maskformer_r50_ms-16xb1-75e_coco-panoptic.py': 'mmdet/maskformer_r50_ms-16xb1-75e_coco.py',
    'maskformer_swin-l-p4-w12_64xb1-ms-300e_coco-panoptic.py': 'mmdet/maskformer_swin-l-p4-w12_64xb1-ms-300e_coco.py',
    'maskformer_r50-d32_8xb2-160k_ade20k-512x512.py': 'mmseg/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py',
    'maskformer_r101-d32_8xb2-160k_ade20k-512x512.py': 'mmseg/maskformer_r101-d32_8xb2-160k_ade20k-512x512.py',
    'maskformer_swin-t_upernet_8xb2-160k_ade20k-512x512.py':
        'mmseg/maskformer_swin-t_upernet_8xb2-160k_ade20k-512x512.py',
    'maskformer_swin-s_upernet_8xb2-160k_ade20k-512x512.py':
        'mmseg/maskformer_swin-s_upernet_8xb2-160k_ade20k-512x512.py',
}
# Deliberate differences: field -> why. None: our configs reproduce OpenMMLab's recipes as they are.
ALLOWED: Dict[str, Dict[str, str]] = {name: {} for name in PAIRS}

# Parameters of the paper's models, millions rounded to whole millions as its tables give them
# (Cheng et al. 2021): Table 1 (ADE20K semantic, no encoder) R50 41M, R101 60M, Swin-T 42M, Swin-S 63M;
# Table 2 (COCO panoptic) R50 + 6 Enc 45M, Swin-L 212M. (64M is the COCO R101 + 6 Enc, not the ADE20K R101.)
PAPER_PARAMS_M = {
    'maskformer_r50_ms-16xb1-75e_coco-panoptic.py': 45,
    'maskformer_swin-l-p4-w12_64xb1-ms-300e_coco-panoptic.py': 212,
    'maskformer_r50-d32_8xb2-160k_ade20k-512x512.py': 41,
    'maskformer_r101-d32_8xb2-160k_ade20k-512x512.py': 60,
    'maskformer_swin-t_upernet_8xb2-160k_ade20k-512x512.py': 42,
    'maskformer_swin-s_upernet_8xb2-160k_ade20k-512x512.py': 63,
}
PAPER_ROUNDING_M = 0.5  # the tables' rounding to whole millions

IMAGES_PER_EPOCH = 118000


def _in_iterations(cfg: Config) -> Tuple[dict, list]:
    """(train_cfg, param_scheduler) with epochs turned into iterations at the config's total batch."""
    train = cfg.train_cfg.to_dict()
    scheds = [dict(s) for s in (cfg.param_scheduler if isinstance(cfg.param_scheduler, list)
                                else [cfg.param_scheduler])]
    if train['type'] != 'EpochBasedTrainLoop':
        return train, scheds
    per_epoch = IMAGES_PER_EPOCH / cfg.auto_scale_lr.base_batch_size

    def iters(epochs: float) -> int:
        return int(round(epochs * per_epoch))

    train = dict(type='IterBasedTrainLoop', max_iters=iters(train['max_epochs']),
                 val_interval=iters(train['val_interval']))
    out = []
    for s in scheds:
        if s.get('by_epoch', True):
            s = dict(s, by_epoch=False, begin=iters(s['begin']), end=iters(s['end']))
            if 'milestones' in s:
                s['milestones'] = [iters(m) for m in s['milestones']]
        out.append(s)
    return train, out


def _layer(num_layers: int, embed_dims: int, num_heads: int, ffn: int, dropout: float) -> dict:
    return dict(num_layers=num_layers, embed_dims=embed_dims, num_heads=num_heads, ffn=ffn, dropout=dropout)


def _ref_dropout(layer_cfg: dict) -> float:
    """The one dropout of an mmdet DETR layer config (attention weights, attention output, FFN)."""
    values = set()
    for key, cfg in layer_cfg.items():
        if key.endswith('attn_cfg'):
            values |= {cfg[k] for k in ('dropout', 'attn_drop', 'proj_drop') if k in cfg}
        elif key == 'ffn_cfg':
            values.add(cfg.get('ffn_drop', 0.0))
    assert len(values) == 1, f'several dropouts in {layer_cfg}'
    return values.pop()


def _ref_layers(cfg: Optional[dict]) -> Optional[dict]:
    if cfg is None:
        return None
    layer = cfg['layer_cfg']
    return _layer(cfg['num_layers'], layer['self_attn_cfg']['embed_dims'], layer['self_attn_cfg']['num_heads'],
                  layer['ffn_cfg']['feedforward_channels'], _ref_dropout(layer))


def _our_layers(cfg: Optional[dict]) -> Optional[dict]:
    if cfg is None:
        return None
    layer = cfg['layer_cfg']
    return _layer(cfg['num_layers'], layer['embed_dims'], layer['num_heads'], layer['feedforward_channels'],
                  layer['dropout'])


def _ref_head(head_cfg, train_cfg) -> dict:
    pd = head_cfg.pixel_decoder
    costs = {m['type'].split('.')[-1]: m for m in train_cfg['assigner']['match_costs']}
    assert head_cfg.loss_mask.type.split('.')[-1] == 'FocalLoss' and 'FocalLossCost' in costs
    focal = (head_cfg.loss_mask.get('alpha', 0.25), head_cfg.loss_mask.get('gamma', 2.0))
    assert (costs['FocalLossCost'].get('alpha', 0.25), costs['FocalLossCost'].get('gamma', 2)) == focal
    encoder = pd.get('encoder') if pd.type.split('.')[-1] == 'TransformerEncoderPixelDecoder' else None
    return dict(
        widths=(head_cfg.feat_channels, head_cfg.out_channels),
        pixel_decoder=dict(encoder=_ref_layers(encoder), norm_cfg=pd.norm_cfg, act_cfg=pd.act_cfg,
                           positional_encoding=pd.get('positional_encoding') if encoder else None),
        enforce_decoder_input_project=head_cfg.enforce_decoder_input_project,
        positional_encoding=head_cfg.positional_encoding,
        transformer_decoder=_ref_layers(head_cfg.transformer_decoder),
        losses=dict(cls=head_cfg.loss_cls.loss_weight, no_object=head_cfg.loss_cls.class_weight[-1],
                    mask=('focal', head_cfg.loss_mask.loss_weight) + focal, dice=head_cfg.loss_dice.loss_weight,
                    # mmdet's MaskFormerHead: losses on every pixel, matching at the mask logits' resolution
                    full_mask=True, match_at='prediction',
                    match=(costs['ClassificationCost']['weight'], ('focal', costs['FocalLossCost']['weight']) + focal,
                           costs['DiceCost']['weight'])))


def _our_head(head, head_cfg) -> dict:
    pd = head_cfg.pixel_decoder
    c, m = head.criterion, head.criterion.assigner
    return dict(
        widths=(head_cfg.feat_channels, head_cfg.out_channels),
        pixel_decoder=dict(encoder=_our_layers(pd.get('encoder')), norm_cfg=pd.norm_cfg, act_cfg=pd.act_cfg,
                           positional_encoding=pd.get('positional_encoding')),
        enforce_decoder_input_project=head_cfg.enforce_decoder_input_project,
        positional_encoding=head_cfg.positional_encoding,
        transformer_decoder=_our_layers(head_cfg.transformer_decoder),
        losses=dict(cls=c.cls_weight, no_object=c.no_object_weight,
                    mask=(c.mask_loss, c.mask_weight, c.focal_alpha, c.focal_gamma), dice=c.dice_weight,
                    full_mask=c.full_mask, match_at=c.match_at,
                    match=(m.cls_weight, (m.mask_cost, m.mask_weight, m.focal_alpha, m.focal_gamma), m.dice_weight)))


def recipe(cfg: Config, ours: bool) -> dict:
    """The compared fields of one config (ours resolved as a run resolves it, or the reference)."""
    model = build_model(cfg)
    det = cfg.default_scope == 'mmdet'
    head_key = 'panoptic_head' if det else 'decode_head'
    head, head_cfg = getattr(model, head_key), cfg.model[head_key]
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
    fields = dict(
        optimizer=cfg.optim_wrapper.optimizer.to_dict(),
        clip_grad=cfg.optim_wrapper.clip_grad.to_dict(),
        lr_and_decay_per_parameter=_effective_lr_decay(cfg, model, {} if ours else _to_ours(model, head_key)),
        schedule=_in_iterations(cfg),
        auto_scale_lr=cfg.get('auto_scale_lr'),
        batch_size=cfg.train_dataloader.batch_size,
        train_pipeline=_components(cfg.train_dataloader.dataset.pipeline),
        test_pipeline=_components(cfg.test_dataloader.dataset.pipeline),
        data_preprocessor={k: v for k, v in cfg.model.data_preprocessor.items() if k != 'batch_augments'},
        batch_augments=cfg.model.data_preprocessor.get('batch_augments'),
        backbone={k: v for k, v in cfg.model.backbone.items() if k != 'init_cfg'},
        pretrained=cfg.model.backbone.get('init_cfg', {}).get('checkpoint'),
        queries=head.num_queries,
        classes=head.num_classes,
        **(_our_head(head, head_cfg) if ours else _ref_head(head_cfg, head_cfg.get('train_cfg', cfg.model.train_cfg))),
        test_cfg=dict(cfg.model.test_cfg),
        evaluators=_components(evaluators),
        parameters=sum(p.numel() for p in model.parameters()),
    )
    return _plain(fields)


@functools.lru_cache(maxsize=None)
def _pair(name: str) -> Tuple[dict, dict]:
    lib, ref_name = PAIRS[name].split('/')
    ours = recipe(resolved(osp.join(REPO, 'configs', name)), ours=True)
    ref = recipe(Config.fromfile(osp.join(MMDET if lib == 'mmdet' else MMSEG, ref_name)), ours=False)
    return ours, ref


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_recipe_matches_reference(name):
    ours, ref = _pair(name)
    diffs = differences(ours, ref)
    report = '\n'.join(f'  {k}: {v}' for k, v in diffs.items())
    assert set(diffs) == set(ALLOWED[name]), f'{name} vs {PAIRS[name]}:\n{report}'


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_parameter_count_is_the_paper_and_openmmlab(name):
    ours, ref = _pair(name)
    assert ours['parameters'] == ref['parameters']  # the same architecture, tensor for tensor
    assert abs(ours['parameters'] / 1e6 - PAPER_PARAMS_M[name]) <= PAPER_ROUNDING_M


def test_schedules_in_iterations():
    """The epoch conversion and the fractions, by hand: R50 75 epochs x 7,375, step after 50; Swin-L 300
    epochs x 1,843.75, warm-up 1,500, step after 250; mmseg 160k, validation every 16k."""
    r50 = resolved(osp.join(REPO, 'configs', 'maskformer_r50_ms-16xb1-75e_coco-panoptic.py'))
    assert (r50.train_cfg.max_iters, r50.train_cfg.val_interval, r50.param_scheduler.milestones) == (
        553125, 7375, [368750])
    swin = resolved(osp.join(REPO, 'configs', 'maskformer_swin-l-p4-w12_64xb1-ms-300e_coco-panoptic.py'))
    warmup, step = swin.param_scheduler
    assert (swin.train_cfg.max_iters, swin.train_cfg.val_interval, warmup.end, step.milestones) == (
        553125, 1844, 1500, [460938])
    seg = resolved(osp.join(REPO, 'configs', 'maskformer_swin-t_upernet_8xb2-160k_ade20k-512x512.py'))
    warmup, poly = seg.param_scheduler
    assert (seg.train_cfg.val_interval, warmup.end, poly.begin, poly.end) == (16000, 1500, 1500, 160000)


def test_every_reference_config_has_an_equivalent():
    import glob
    refs = {f'mmdet/{osp.basename(p)}' for p in glob.glob(osp.join(MMDET, '*.py'))} | {
        f'mmseg/{osp.basename(p)}' for p in glob.glob(osp.join(MMSEG, '*.py'))}
    assert refs == set(PAIRS.values())  # mmdet 3.3: 2, mmseg 1.2.2: 4
    for name in PAIRS:
        assert osp.isfile(osp.join(REPO, 'configs', name))
