"""Convert an official Mask2Former or MaskFormer checkpoint (facebookresearch, detectron2) to m2f_mm.

    python tools/model_converters/d2_to_m2f.py IN.pkl OUT.pth [--config CFG] [--cfg-options K=V ...]
                                               [--partial] [--trust-pickle] [--head-prefix P]
                                               [--things-first ANN_JSON]

IN is a model-zoo ``model_final_*.pkl`` (pickle of numpy arrays) or a detectron2 ``.pth`` with the
same ``{'model': ...}`` dict, from facebookresearch/Mask2Former (-> ``M2FHead``) or
facebookresearch/MaskFormer (-> ``M2FMaskFormerHead``); which one is read off the keys and printed,
with the head settings a MaskFormer file needs. With ``--config`` the model is built from the config (no weights are
downloaded) and the checkpoint must fit it exactly: every shape equal, every model weight filled,
every checkpoint weight used (``--partial`` relaxes the last two and lists what is left out).
Without ``--config`` keys are only renamed (head under ``--head-prefix``, default
``panoptic_head.``; use ``decode_head.`` for mmseg configs).

The official ADE20K and Cityscapes *panoptic* models number their classes in the dataset's file
order (things and stuff interleaved, or stuff first); m2f_mm puts things first. ``--things-first``
with that dataset's COCO panoptic annotation file reorders the classifier's rows to match (the
shapes agree either way, so without it such a model loads but names the wrong classes).

Exit status: 0 written, 1 the checkpoint does not fit the config, 2 unreadable / not a
Mask2Former or MaskFormer checkpoint m2f_mm can hold. The official weights of both are CC BY-NC 4.0
(non-commercial); the license is recorded in the output's ``meta``. See docs/official_checkpoints.md.
"""
import argparse
import os.path as osp
import sys

import torch

from m2f_mm.checkpoints import (CheckpointFormatError, CheckpointMismatchError, backbone_name,
                                categories_of, convert_d2_checkpoint, d2_head_summary, extract_d2_weights,
                                load_d2_checkpoint, maskformer_head_settings, reorder_class_rows,
                                things_first_order)

LICENSES = {kind: (f'CC BY-NC 4.0 (https://creativecommons.org/licenses/by-nc/4.0/); official {kind} weights '
                   f'from facebookresearch/{kind} MODEL_ZOO.md, non-commercial use only')
            for kind in ('Mask2Former', 'MaskFormer')}


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='detectron2 checkpoint (model_final_*.pkl or .pth)')
    parser.add_argument('dst', help='output m2f_mm checkpoint (.pth)')
    parser.add_argument('--config', help='m2f_mm config the checkpoint must fit (checks shapes and coverage)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config settings, e.g. model.panoptic_head.num_queries=200')
    parser.add_argument('--partial', action='store_true',
                        help='with --config: allow model weights missing from the checkpoint and checkpoint '
                             'weights the model has no place for; both are listed')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='unpickle arbitrary objects (by default only numpy arrays / tensors are accepted); '
                             'only for files you trust')
    parser.add_argument('--head-prefix', choices=['panoptic_head.', 'decode_head.'], default=None,
                        help='where the head goes (default: from --config, else panoptic_head.)')
    parser.add_argument('--things-first', metavar='ANN_JSON',
                        help="reorder the class rows from this COCO panoptic annotation file's category order "
                             '(the order the official ADE20K / Cityscapes panoptic models use) to things first, '
                             "m2f_mm's label order")
    return parser.parse_args(argv)


def _import_m2f_models() -> None:
    """Register m2f_mm's models (m2f_mm/__init__ may not import every module)."""
    import importlib
    for name in ('m2f_mm', 'm2f_mm.models.pixel_decoder', 'm2f_mm.models.transformer_decoder', 'm2f_mm.models.head',
                 'm2f_mm.models.fusion', 'm2f_mm.models.detector', 'm2f_mm.models.seg_head',
                 'm2f_mm.models.maskformer_pixel_decoder', 'm2f_mm.models.detr_decoder',
                 'm2f_mm.models.maskformer_head'):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def build_target_state(config: str, cfg_options: dict) -> dict:
    """state_dict of the model the config describes (built without loading pretrained weights)."""
    from mmengine.registry import DefaultScope
    from m2f_mm.config import load_resolved
    cfg = load_resolved(config, cfg_options)  # class counts from the config's data
    _import_m2f_models()
    scope = cfg.get('default_scope', None) or 'mmdet'
    if scope == 'mmseg':
        import mmseg.models  # noqa: F401
        from mmseg.registry import MODELS
    else:
        import mmdet.models  # noqa: F401
        from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    return model.state_dict()


def describe(src: str, weights: dict) -> str:
    """What the file holds: model kind, counts, backbone; for MaskFormer also the head settings it needs."""
    summary = d2_head_summary(weights)
    kind = summary['model']
    line = (f'{src}: {kind} checkpoint, {summary["num_classes"]} classes, {summary["num_queries"]} queries, '
            f'{summary["num_decoder_layers"]} decoder layers, width {summary["hidden_dim"]}, ')
    if kind == 'MaskFormer':
        encoder = (f' with {summary["num_encoder_layers"]} encoder layers'
                   if summary['pixel_decoder'] == 'TransformerEncoderPixelDecoder' else '')
        line += (f'pixel decoder {summary["pixel_decoder"]}{encoder}, decoder reads '
                 f'{summary["transformer_in_feature"]} ({summary["memory_channels"]} channels), ')
    line += f'backbone: {backbone_name(weights)}'
    if kind == 'MaskFormer':
        line += f'\nuse an m2f_mm config with {maskformer_head_settings(summary)}'
    return line


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        obj = load_d2_checkpoint(args.src, trust_pickle=args.trust_pickle)
        weights = extract_d2_weights(obj, args.src)
    except (CheckpointFormatError, OSError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    summary = d2_head_summary(weights)
    kind = summary['model']
    print(describe(args.src, weights))

    target = build_target_state(args.config, args.cfg_options) if args.config else None
    try:
        result = convert_d2_checkpoint(weights, target_state=target, partial=args.partial,
                                       head_prefix=args.head_prefix, source=args.src)
    except CheckpointMismatchError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except CheckpointFormatError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    state = result.state_dict
    if args.things_first:
        try:
            order = things_first_order(categories_of(args.things_first))
            prefix = next(k for k in state if k.endswith('class_embed.weight'))[:-len('class_embed.weight')]
            state = reorder_class_rows(state, order, prefix=prefix)
        except (OSError, ValueError, StopIteration) as err:
            print(f'error: --things-first {args.things_first}: {err or "no class_embed in the converted weights"}',
                  file=sys.stderr)
            return 1
        print(f'class rows reordered to things first ({sum(1 for i, k in enumerate(order) if i != k)} of '
              f'{len(order)} classes moved)')
    if result.unmapped_source_keys:
        print(f'warning: {len(result.unmapped_source_keys)} checkpoint weight(s) not converted:', file=sys.stderr)
        for key in result.unmapped_source_keys:
            print(f'  {key}', file=sys.stderr)
    if result.missing_target_keys:
        print(f'warning: {len(result.missing_target_keys)} model weight(s) not in the checkpoint (--partial):',
              file=sys.stderr)
        for key in result.missing_target_keys:
            print(f'  {key}', file=sys.stderr)
    if result.dropped_source_keys:
        print(f'skipped (not model weights): {", ".join(result.dropped_source_keys)}')

    meta = dict(converted_from=f'detectron2 {kind} (facebookresearch/{kind})', model=kind,
                source=osp.basename(args.src), license=LICENSES[kind], num_classes=summary['num_classes'],
                num_queries=summary['num_queries'],
                config=args.config, partial=bool(args.partial))
    if isinstance(obj, dict) and isinstance(obj.get('__author__'), str):
        meta['author'] = obj['__author__']
    if args.things_first:
        meta['class_order'] = f'things first, from {osp.basename(args.things_first)}'
    torch.save(dict(state_dict=state, meta=meta), args.dst)
    print(f'wrote {len(state)} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    from m2f_mm.errors import run_main
    run_main(main)
