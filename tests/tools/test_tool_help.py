"""Every tool under tools/ answers --help, and every option in that help is described."""
import glob
import os.path as osp
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from .conftest import REPO

TOOLS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True)
               if not osp.basename(p).startswith('_'))
# (tool, extra argv): sub-commands have their own help.
CALLS = [(t, []) for t in TOOLS] + [('tools/analysis_tools/analyze_logs.py', [c]) for c in ('plot_curve',
                                                                                            'cal_train_time')]


def undescribed(help_text: str) -> set:
    """Entries of the 'options' / 'positional arguments' sections with no description next to or under them."""
    missing, section = set(), False
    lines = help_text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith(' '):
            section = line.startswith(('options:', 'optional arguments:', 'positional arguments:'))
            continue
        if not section or not re.match(r'^  \S', line):
            continue
        entry = line.strip()
        described = re.search(r'\S\s{2,}\S', entry) is not None
        continued = i + 1 < len(lines) and re.match(r'^ {5,}\S', lines[i + 1]) is not None
        if not (described or continued):
            missing.add(entry.split()[0].rstrip(','))
    return missing


def test_undescribed_finds_bare_options():
    text = 'usage: x\n\noptions:\n  -h, --help  show help\n  --bare\n  --long-name LONG_NAME\n' \
           '                        described below\n  --flag\n'
    assert undescribed(text) == {'--bare', '--flag'}


def _help(call):
    tool, extra = call
    return call, subprocess.run([sys.executable, tool] + extra + ['--help'], cwd=REPO, capture_output=True,
                                text=True, timeout=300)


def test_every_tool_answers_help_with_described_options():
    assert {'tools/demo/image_demo.py', 'tools/analysis_tools/get_flops.py', 'tools/misc/print_config.py',
            'tools/dataset_converters/make_synthetic_data.py'} <= set(TOOLS)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_help, CALLS))
    problems = []
    for (tool, extra), result in results:
        name = ' '.join([tool] + extra)
        if result.returncode != 0 or 'usage:' not in result.stdout:
            problems.append(f'{name}: rc {result.returncode}\n{result.stderr[-1500:]}')
            continue
        bare = undescribed(result.stdout)
        if bare:
            problems.append(f'{name}: options without a description: {sorted(bare)}')
    assert not problems, '\n'.join(problems)


def test_setup_script_answers_help_without_installing():
    result = subprocess.run(['bash', 'tools/setup_env.sh', '--help'], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={'M2F_VENV': '/nonexistent/venv', 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0 and 'M2F_WHEELS' in result.stdout and 'M2F_WHEEL_CACHE' in result.stdout
