"""Run the code blocks of a markdown page as written, in order, the way a reader would type them.

Blocks:
* ```bash: run with ``bash -euo pipefail`` in the sandbox (``python`` is the test's interpreter);
* ```python whose first line is ``# file: PATH``: the reader writes that file (PATH relative to the sandbox);
* other ```python blocks: run with ``python -c`` in the sandbox;
* any other language (text, console, ...): output shown to the reader, not run.

The sandbox is a folder holding a copy of ``configs/`` and links to the repository's ``tools/`` and
``setup.py`` (``m2f_mm`` is the installed package), so a page can write configs and data without touching
the repository.
"""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import List

FENCE = re.compile(r'^```(\w*)[^\n]*\n(.*?)^```\s*$', re.S | re.M)
FILE_MARK = re.compile(r'^# file: (\S+)\s*$')


@dataclass
class Block:
    language: str
    code: str
    line: int  # where the block starts in the page, for messages

    @property
    def writes(self) -> str:
        first = self.code.splitlines()[0] if self.code.strip() else ''
        match = FILE_MARK.match(first) if self.language == 'python' else None
        return match.group(1) if match else ''

    @property
    def runs(self) -> bool:
        return self.language == 'bash' or (self.language == 'python' and not self.writes)


def blocks(markdown: str) -> List[Block]:
    return [Block(m.group(1), m.group(2), markdown[:m.start()].count('\n') + 1) for m in FENCE.finditer(markdown)]


def make_sandbox(repo: str, where: str) -> str:
    os.makedirs(where, exist_ok=True)
    shutil.copytree(osp.join(repo, 'configs'), osp.join(where, 'configs'))
    for name in ('tools', 'setup.py', 'README.md', 'docs'):  # m2f_mm: the installed package, as for a reader
        os.symlink(osp.join(repo, name), osp.join(where, name))
    bin_dir = osp.join(where, '.bin')
    os.makedirs(bin_dir)
    with open(osp.join(bin_dir, 'python'), 'w') as f:  # a link would lose the virtual environment
        f.write(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    os.chmod(osp.join(bin_dir, 'python'), 0o755)
    return where


def run_block(block: Block, sandbox: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run (or write) one block; returns the finished process (a written file gives returncode 0)."""
    if block.writes:
        path = osp.join(sandbox, block.writes)
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
        with open(path, 'w') as f:
            f.write(block.code)
        return subprocess.CompletedProcess(['write', path], 0, '', '')
    env = dict(os.environ, PATH=osp.join(sandbox, '.bin') + os.pathsep + os.environ.get('PATH', ''),
               OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    command = ['bash', '-euo', 'pipefail', '-c', block.code] if block.language == 'bash' else \
        [sys.executable, '-c', block.code]
    return subprocess.run(command, cwd=sandbox, env=env, capture_output=True, text=True, timeout=timeout)


def section(markdown: str, heading: str) -> str:
    """The text of the ``## heading`` section (with its ``###`` sub-sections), up to the next ``## ``."""
    start = markdown.index(f'\n## {heading}\n')
    end = markdown.find('\n## ', start + 1)
    return markdown[start:] if end < 0 else markdown[start:end]
