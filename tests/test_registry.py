"""Registration: m2f_mm components build from mmdet and mmseg configs; mmdet's/mmseg's own stay theirs."""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import mmdet
import mmseg
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMDET_CFG = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former',
                     'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py')
MMSEG_CFG = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'mask2former',
                     'mask2former_r50_8xb2-160k_ade20k-512x512.py')


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_custom_imports_registers_components_in_both_scopes(tmp_path, scope):
    """A fresh interpreter that only reads a config with custom_imports can build m2f_mm modules."""
    cfg_file = tmp_path / f'{scope}_cfg.py'
    cfg_file.write_text(textwrap.dedent(f"""
        custom_imports = dict(imports=['m2f_mm'], allow_failed_imports=False)
        default_scope = '{scope}'
        assigner = dict(type='M2FHungarianMatcher', cls_weight=2.0, mask_weight=5.0, dice_weight=5.0)
        fusion = dict(type='M2FFusionHead', num_things_classes=3, num_stuff_classes=2,
                      test_cfg=dict(panoptic_on=True, semantic_on=True, instance_on=True))
        pixel_decoder = dict(
            type='M2FPixelDecoder', in_channels=[32, 32, 32, 32], strides=[4, 8, 16, 32],
            feat_channels=32, out_channels=32, num_outs=3,
            encoder=dict(num_layers=1, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=32, num_heads=4, num_levels=3, num_points=2),
                ffn_cfg=dict(embed_dims=32, feedforward_channels=64))),
            positional_encoding=dict(num_feats=16, normalize=True))
    """))
    result = _run(f"""
        import sys
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        assert 'm2f_mm' not in sys.modules
        cfg = Config.fromfile({str(cfg_file)!r})   # performs custom_imports
        assert 'm2f_mm' in sys.modules
        init_default_scope(cfg.default_scope)
        from {scope}.registry import MODELS, TASK_UTILS
        assigner = TASK_UTILS.build(cfg.assigner)
        fusion = MODELS.build(cfg.fusion)
        decoder = MODELS.build(cfg.pixel_decoder)
        print(type(assigner).__module__, type(fusion).__module__, type(decoder).__module__)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    modules = result.stdout.split()
    assert modules and all(m.startswith('m2f_mm.') for m in modules), result.stdout


def test_all_m2f_names_are_prefixed_and_distinct_from_mmdet():
    import m2f_mm  # noqa: F401
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.registry import TASK_UTILS as DET_TASK_UTILS
    ours = [(reg, name, cls) for reg in (DET_MODELS, DET_TASK_UTILS)
            for name, cls in reg.module_dict.items() if cls.__module__.startswith('m2f_mm')]
    assert len(ours) >= 4
    for _, name, _ in ours:
        assert name.startswith('M2F'), f'{name} is registered without the M2F prefix'


def test_mmdet_in_tree_mask2former_still_builds_mmdet_classes():
    import m2f_mm  # noqa: F401
    from mmdet.models.dense_heads import Mask2FormerHead
    from mmdet.models.layers import MSDeformAttnPixelDecoder
    from mmdet.models.seg_heads import MaskFormerFusionHead
    from mmdet.models.task_modules import HungarianAssigner
    from mmdet.registry import MODELS
    cfg = Config.fromfile(MMDET_CFG)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert type(model.panoptic_head) is Mask2FormerHead
    assert type(model.panoptic_head.pixel_decoder) is MSDeformAttnPixelDecoder
    assert type(model.panoptic_fusion_head) is MaskFormerFusionHead
    assert type(model.panoptic_head.assigner) is HungarianAssigner


def test_mmseg_in_tree_mask2former_still_builds_mmseg_classes():
    import m2f_mm  # noqa: F401
    from mmseg.models.decode_heads import Mask2FormerHead as SegMask2FormerHead
    from mmseg.registry import MODELS
    cfg = Config.fromfile(MMSEG_CFG)
    cfg.model.backbone.init_cfg = None
    cfg.model.pretrained = None
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    assert type(model.decode_head) is SegMask2FormerHead


def test_only_registry_py_calls_register_module():
    """Every registration goes through m2f_mm/registry.py (docs/CONTRACTS.md): no other module calls it."""
    import ast
    package = osp.join(REPO, 'm2f_mm')
    callers = []
    for folder, _, files in os.walk(package):
        for name in files:
            path = osp.join(folder, name)
            if not name.endswith('.py') or path == osp.join(package, 'registry.py'):
                continue
            for node in ast.walk(ast.parse(open(path).read(), path)):
                if isinstance(node, ast.Attribute) and node.attr == 'register_module':
                    callers.append(f'{osp.relpath(path, REPO)}:{node.lineno}')
    assert not callers, 'register through m2f_mm/registry.py instead: ' + ', '.join(callers)


def test_every_m2f_class_in_the_registries_came_through_registry_py():
    """In a fresh interpreter: each class of m2f_mm in any mmengine / mmdet / mmseg registry is M2F-named,
    and registry.py's REGISTERED lists exactly those registrations."""
    result = _run("""
        import json
        import mmdet.registry, mmseg.registry, mmengine.registry
        from mmengine.registry import Registry
        import m2f_mm
        from m2f_mm.registry import REGISTERED
        found = set()
        for scope in (mmengine.registry, mmdet.registry, mmseg.registry):
            for registry in {id(r): r for r in vars(scope).values() if isinstance(r, Registry)}.values():
                for name, cls in registry.module_dict.items():
                    if cls.__module__.startswith('m2f_mm') or name.startswith('M2F'):
                        assert name.startswith('M2F') and cls.__module__.startswith('m2f_mm.'), (name, cls)
                        found.add((id(registry), name, cls))
        recorded = {(id(registry), name, cls) for registry, name, cls in REGISTERED}
        assert len(recorded) == len(REGISTERED), 'a class registered twice in one registry'
        assert found == recorded, (sorted(n for _, n, _ in found - recorded), sorted(n for _, n, _ in recorded - found))
        kinds = sorted({registry.name for registry, _, _ in REGISTERED})
        print(json.dumps([len(found), kinds]))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    count, kinds = json.loads(result.stdout.splitlines()[-1])
    assert int(count) >= 40
    assert {'hook', 'runner', 'visualizer', 'optim_wrapper', 'model', 'task util'} <= set(kinds), kinds
