"""The converter tools as a user runs them (in this process: the tool's start-up is covered by
test_tool_help.py): a conversion prints what it wrote; bad input ends with one line and status 1."""
import json
import sys

import numpy as np
import pytest
from PIL import Image

from .conftest import load_tool


def test_semantic_tool_converts_and_bad_input_ends_with_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'labels').mkdir()
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(tmp_path / 'images' / 'x.jpg')
    labels = np.zeros((32, 40), np.uint8)
    labels[10:20, 5:30] = 1
    Image.fromarray(labels).save(tmp_path / 'labels' / 'x.png')
    (tmp_path / 'classes.json').write_text(json.dumps(['background', 'coin']))
    tool = load_tool('tools/dataset_converters/semantic_pngs.py')

    def run(out):
        monkeypatch.setattr(sys, 'argv', ['semantic_pngs.py', '--labels', str(tmp_path / 'labels'), '--image-dir',
                                          str(tmp_path / 'images'), '--classes', str(tmp_path / 'classes.json'),
                                          '--out', str(tmp_path / out), '--split', 'train'])
        with pytest.raises(SystemExit) as exit_info:
            tool.run(tool.main)
        return exit_info.value.code, capsys.readouterr()

    code, printed = run('out')
    assert code == 0 and 'classes.json' in printed.out and 'counts: images 1' in printed.out
    written = np.asarray(Image.open(tmp_path / 'out' / 'annotations' / 'semantic_train' / 'x.png'))
    assert np.array_equal(written, labels)
    labels[0, 0] = 9  # a value the table does not know
    Image.fromarray(labels).save(tmp_path / 'labels' / 'x.png')
    code, printed = run('out2')
    assert code == 1 and printed.err.count('\n') == 1
    assert printed.err.startswith('m2f_mm: ') and 'x.png has values [9]' in printed.err
