"""Print the whole config after inheritance and --cfg-options (optionally save it).

    python tools/misc/print_config.py CONFIG [--cfg-options K=V ...] [--save-path FULL.py]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import _env_guard  # noqa: E402,F401  (must come first: checks the install, registers m2f_mm)

from mmengine.config import Config, DictAction  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings before printing, e.g. model.panoptic_head.num_queries=200')
    parser.add_argument('--save-path', help='also write the resolved config here (.py, .json or .yaml)')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(cfg.pretty_text)
    if args.save_path:
        cfg.dump(args.save_path)
        print(f'saved to {args.save_path}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
