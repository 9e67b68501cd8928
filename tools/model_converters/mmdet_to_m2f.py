"""Convert an mmdet 3.x (or mmseg 1.x) Mask2Former checkpoint to m2f_mm's key layout.

    python tools/model_converters/mmdet_to_m2f.py IN.pth OUT.pth [--trust-pickle] [--allow-unmapped]

Backbone / neck keys pass through unchanged; every panoptic_head (mmdet) or decode_head (mmseg) key is renamed
(m2f_mm.checkpoints.MMDET_RULES). Exits with status 1 if a head key has no rule, unless
--allow-unmapped (those keys are then dropped and listed).
"""
import argparse
import sys

import torch

from m2f_mm.checkpoints import convert_mmdet_to_m2f, detect_layout, load_local_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='mmdet or mmseg checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='load with plain pickle, running whatever the file asks for; never needed for genuine '
                             'mmdet / mmengine checkpoints (they load safely), only for files you made yourself')
    parser.add_argument('--allow-unmapped', action='store_true',
                        help='drop head keys without a rule instead of failing')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        ckpt = load_local_checkpoint(args.src, map_location='cpu', trust_pickle=args.trust_pickle)
    except Exception as err:  # pickle.UnpicklingError and friends, depending on the torch version
        if args.trust_pickle:
            raise
        print(f'could not load {args.src} safely ({type(err).__name__}: {err})', file=sys.stderr)
        return 2
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    layout = detect_layout(state)
    if layout == 'm2f_mm':
        print(f'{args.src} already has the m2f_mm layout; nothing to convert', file=sys.stderr)
        return 1
    new_state, unmapped = convert_mmdet_to_m2f(state)
    if unmapped:
        print(f'{len(unmapped)} key(s) without a mapping rule:', file=sys.stderr)
        for key in unmapped:
            print(f'  {key}', file=sys.stderr)
        if not args.allow_unmapped:
            return 1
    meta = dict(ckpt.get('meta', {})) if isinstance(ckpt, dict) and isinstance(ckpt.get('meta'), dict) else {}
    meta['converted_from'] = 'mmdet Mask2Former'
    torch.save(dict(state_dict=new_state, meta=meta), args.dst)
    print(f'wrote {len(new_state)} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    from m2f_mm.errors import run_main
    run_main(main)
