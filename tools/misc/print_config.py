"""Print the whole config after inheritance and --cfg-options (optionally save it), as a run resolves it:
data_root in every dataset, classes and class counts from the data when it is on this machine, the
schedule in iterations (m2f_mm/config).

    python tools/misc/print_config.py CONFIG [--cfg-options K=V ...] [--save-path FULL.py]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: _env_guard, not in m2f_mm (docstring)
import _env_guard  # noqa: E402,F401  (must come first: checks the install, registers m2f_mm)

from mmengine.config import DictAction  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings before printing, e.g. model.panoptic_head.num_queries=200')
    parser.add_argument('--save-path', help='also write the resolved config here (.py, .json or .yaml)')
    args = parser.parse_args(argv)
    from m2f_mm.config import load_resolved
    # what a run builds: data_root in every dataset, classes and class counts from the data, schedule in iterations
    cfg = load_resolved(args.config, args.cfg_options, purpose='data')
    print(cfg.pretty_text)
    if args.save_path:
        cfg.dump(args.save_path)
        print(f'saved to {args.save_path}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    _env_guard.run_tool(main)
