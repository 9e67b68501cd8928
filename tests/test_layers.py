"""Imports inside m2f_mm point down the layers, never up or sideways.

The layers, bottom first (a package may import its own modules and any package of a lower layer):

    0  errors                              the ground floor: imports nothing from m2f_mm
    1  utils, ops, registry, structures    tensors, installs, the registries, the panoptic format
    2  checkpoints, config                 checkpoint formats; config resolution
    3  models, datasets, evaluation        the network; the data; the metrics (peers: none imports another)
    4  engine                              runner, hooks, optimizer wrappers
    5  apis, deploy, visualization         what users call

So models never import engine, datasets, evaluation or apis; checkpoints never import engine; datasets
and evaluation never import engine or apis. ``m2f_mm/__init__.py`` imports every registering module and
stands above them all. Every import is read from the source (AST), lazy imports inside functions included;
no m2f_mm module imports the tools (``tools/``, ``_env_guard``).
"""
import ast
import os
import os.path as osp
from typing import Iterator, Tuple

PACKAGE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'm2f_mm')
LAYERS = [
    {'errors'},
    {'utils', 'ops', 'registry', 'structures'},
    {'checkpoints', 'config'},
    {'models', 'datasets', 'evaluation'},
    {'engine'},
    {'apis', 'deploy', 'visualization'},
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}
# (importing package, imported package) pairs allowed to break the order: none
ALLOWED: set = set()


def _modules() -> Iterator[Tuple[str, str]]:
    """(path, dotted module name) of every module of m2f_mm."""
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(folder, name)
                rel = osp.relpath(path, osp.dirname(PACKAGE))[:-3].replace(os.sep, '.')
                yield path, rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def _imports(path: str, module: str) -> Iterator[Tuple[str, int]]:
    """(absolute dotted name, line) of every import in the file, at any depth."""
    package = module if path.endswith('__init__.py') else module.rsplit('.', 1)[0]
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module, node.lineno
                continue
            base = package.split('.')[:len(package.split('.')) - (node.level - 1)]
            if node.module:
                yield '.'.join(base + [node.module]), node.lineno
            else:  # from . import a, b: each name may be a module
                for alias in node.names:
                    yield '.'.join(base + [alias.name]), node.lineno


def _part(dotted: str) -> str:
    """'m2f_mm.models.head' -> 'models'; 'm2f_mm.errors' -> 'errors'."""
    parts = dotted.split('.')
    return parts[1] if len(parts) > 1 else ''


def _edges():
    """(importing package, imported package, where) for every import between two parts of m2f_mm."""
    for path, module in _modules():
        if module == 'm2f_mm':
            continue  # the registration root imports every layer
        source = _part(module)
        for target, line in _imports(path, module):
            if target.split('.')[0] == 'm2f_mm' and _part(target) and _part(target) != source:
                yield source, _part(target), f'{osp.relpath(path, osp.dirname(PACKAGE))}:{line} imports {target}'


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(module) for _, module in _modules()} - {''}
    assert parts == set(LAYER), f'give these a layer in LAYERS: {sorted(parts ^ set(LAYER))}'


def test_imports_point_down_the_layers():
    wrong = [where for source, target, where in _edges()
             if LAYER[target] >= LAYER[source] and (source, target) not in ALLOWED]
    assert not wrong, 'imports that point up or sideways:\n' + '\n'.join(wrong)


def test_named_rules_hold():
    """The rules the layer order implies, spelled out (the allowlist aside)."""
    forbidden = {'models': {'engine', 'datasets', 'evaluation', 'apis'}, 'checkpoints': {'engine'},
                 'datasets': {'engine', 'apis'}, 'evaluation': {'engine', 'apis'}}
    wrong = [where for source, target, where in _edges() if target in forbidden.get(source, ())]
    assert not wrong, '\n'.join(wrong)
    errors = osp.join(PACKAGE, 'errors.py')
    assert not [name for name, _ in _imports(errors, 'm2f_mm.errors') if name.split('.')[0] == 'm2f_mm']


def test_no_module_imports_the_tools():
    wrong = [f'{path}:{line} imports {name}' for path, module in _modules() for name, line in _imports(path, module)
             if name.split('.')[0] in ('tools', '_env_guard')]
    assert not wrong, '\n'.join(wrong)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """A function-level relative import is read and resolved (the checker itself, on a made-up module)."""
    source = tmp_path / 'head.py'
    source.write_text('def f():\n    from ..engine import runner\n    from . import fusion\n')
    found = sorted(name for name, _ in _imports(str(source), 'm2f_mm.models.head'))
    assert found == ['m2f_mm.engine', 'm2f_mm.models.fusion']
