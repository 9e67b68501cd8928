"""Every tool under tools/ answers --help, and every option in that help is described."""
import glob
import os.path as osp
import re
import subprocess
import sys

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


# One interpreter runs every tool's --help as `python TOOL --help` would (runpy, __main__), so the stack is
# imported once instead of once per tool.
_RUN_HELP = r"""
import contextlib, io, json, runpy, sys
results = []
for tool, extra in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    sys.argv = [tool] + extra + ['--help']
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(tool, run_name='__main__')
    except SystemExit as exit_:
        code = exit_.code or 0
    except Exception as exc:  # noqa: BLE001  reported as the tool's failure
        code, err = 1, io.StringIO(f'{type(exc).__name__}: {exc}')
    results.append([tool, extra, code, out.getvalue(), err.getvalue()])
print('RESULTS ' + json.dumps(results))
"""


def test_every_tool_answers_help_with_described_options():
    import json
    assert {'tools/demo/image_demo.py', 'tools/analysis_tools/get_flops.py', 'tools/misc/print_config.py',
            'tools/dataset_converters/make_synthetic_data.py'} <= set(TOOLS)
    proc = subprocess.run([sys.executable, '-c', _RUN_HELP, json.dumps(CALLS)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith('RESULTS ')]
    assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads(line[0][len('RESULTS '):])
    assert len(results) == len(CALLS)
    problems = []
    for tool, extra, code, stdout, stderr in results:
        name = ' '.join([tool] + extra)
        if code != 0 or 'usage:' not in stdout:
            problems.append(f'{name}: rc {code}\n{stderr[-1500:]}')
            continue
        bare = undescribed(stdout)
        if bare:
            problems.append(f'{name}: options without a description: {sorted(bare)}')
    assert not problems, '\n'.join(problems)


def test_setup_script_answers_help_without_installing():
    result = subprocess.run(['bash', 'tools/setup_env.sh', '--help'], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={'M2F_VENV': '/nonexistent/venv', 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0 and 'M2F_WHEELS' in result.stdout and 'M2F_WHEEL_CACHE' in result.stdout
