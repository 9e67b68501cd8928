"""mmdet-style sub-configs -> the typed keywords of m2f_mm's layers, refusing what they cannot honour.

mmdet's Mask2Former configs describe layers as ``self_attn_cfg`` / ``cross_attn_cfg`` / ``ffn_cfg``
(+ ``norm_cfg``) and positional encodings as ``SinePositionalEncoding`` kwargs. m2f_mm's layers
implement exactly the paper's setting (no dropout, ReLU FFN of two layers, LayerNorm, batch-first,
sine encodings); a key that asks for anything else is an error naming it, never dropped. MaskFormer's
DETR layers (``detr_layer_kwargs``) take one dropout probability, given the mmdet way (``dropout``) or
the mmseg way (``attn_drop`` / ``proj_drop`` / ``dropout_layer``).
"""
from typing import Dict, Optional, Tuple

from ..errors import M2FConfigError

_ATTN_KEYS = {'embed_dims', 'num_heads', 'num_levels', 'num_points', 'im2col_step', 'dropout', 'batch_first'}
_FFN_KEYS = {'embed_dims', 'feedforward_channels', 'num_fcs', 'ffn_drop', 'act_cfg'}
SINE_TYPES = (None, 'SinePositionalEncoding', 'mmdet.SinePositionalEncoding')
LAYER_NORM_TYPES = ('LN', 'LayerNorm')


def require_intermediate(return_intermediate: bool, where: str = 'transformer_decoder') -> None:
    """mmdet's decoders take ``return_intermediate``; ours always return every layer's prediction set (deep
    supervision), so only True, mmdet's configs' value, is accepted."""
    if return_intermediate is not True:
        raise M2FConfigError(f'{where}.return_intermediate={return_intermediate!r} is not supported: every decoder '
                             'layer gives a supervised prediction set; leave the key out (or set it to True)')


def check_attention_ffn(attn_cfg: dict, ffn_cfg: dict, where: str) -> None:
    """Raise ValueError unless the mmdet sub-configs describe what our layers implement."""
    for name, cfg, allowed in (('self_attn_cfg', attn_cfg, _ATTN_KEYS), ('ffn_cfg', ffn_cfg, _FFN_KEYS)):
        unknown = set(cfg) - allowed
        if unknown:
            raise M2FConfigError(f'{where}.{name}: unsupported keys {sorted(unknown)}; allowed {sorted(allowed)}')
    if float(attn_cfg.get('dropout', 0.0)) != 0.0 or float(ffn_cfg.get('ffn_drop', 0.0)) != 0.0:
        raise M2FConfigError(f'{where}: dropout is not supported (Mask2Former uses none), got '
                             f'dropout={attn_cfg.get("dropout")}, ffn_drop={ffn_cfg.get("ffn_drop")}')
    if not attn_cfg.get('batch_first', True):
        raise M2FConfigError(f'{where}: batch_first=False is not supported; tensors are [B, N, D]')
    if int(ffn_cfg.get('num_fcs', 2)) != 2:
        raise M2FConfigError(f'{where}: num_fcs must be 2, got {ffn_cfg.get("num_fcs")}')
    act = dict(ffn_cfg.get('act_cfg', dict(type='ReLU')))
    if act.get('type', 'ReLU') != 'ReLU':
        raise M2FConfigError(f'{where}: only ReLU FFNs are supported, got {act}')


def check_layer_norm(norm_cfg: Optional[dict], where: str) -> None:
    """Our layers use LayerNorm; another ``norm_cfg`` is refused."""
    if norm_cfg is not None and dict(norm_cfg).get('type') not in LAYER_NORM_TYPES:
        raise M2FConfigError(f'{where}.norm_cfg={norm_cfg}: only LayerNorm (type="LN") is supported')


def encoder_layer_kwargs(layer_cfg: dict, where: str = 'pixel_decoder.encoder.layer_cfg') -> Dict:
    """Our ``M2FDeformEncoderLayer`` keywords from ours or mmdet's ``self_attn_cfg`` + ``ffn_cfg``."""
    layer_cfg = dict(layer_cfg)
    if 'self_attn_cfg' not in layer_cfg and 'ffn_cfg' not in layer_cfg:
        return layer_cfg
    attn = dict(layer_cfg.pop('self_attn_cfg', {}))
    ffn = dict(layer_cfg.pop('ffn_cfg', {}))
    check_layer_norm(layer_cfg.pop('norm_cfg', None), where)
    if layer_cfg:
        raise M2FConfigError(f'{where}: unsupported keys {sorted(layer_cfg)}')
    check_attention_ffn(attn, ffn, where)
    dims = attn.get('embed_dims', 256)
    if ffn.get('embed_dims', dims) != dims:
        raise M2FConfigError(f'{where}: ffn embed_dims {ffn["embed_dims"]} != attention embed_dims {dims}')
    return dict(embed_dims=dims, num_heads=attn.get('num_heads', 8), num_levels=attn.get('num_levels', 3),
                num_points=attn.get('num_points', 4), im2col_step=attn.get('im2col_step', 64),
                feedforward_channels=ffn.get('feedforward_channels', 1024))


def decoder_layer_kwargs(layer_cfg: dict, where: str = 'transformer_decoder.layer_cfg') -> Dict:
    """Our ``M2FTransformerDecoderLayer`` keywords from ours or mmdet's self / cross attention + FFN configs."""
    layer_cfg = dict(layer_cfg)
    check_layer_norm(layer_cfg.pop('norm_cfg', None), where)
    if not {'self_attn_cfg', 'cross_attn_cfg', 'ffn_cfg'} & set(layer_cfg):
        return layer_cfg
    self_attn = dict(layer_cfg.pop('self_attn_cfg', {}))
    cross_attn = dict(layer_cfg.pop('cross_attn_cfg', self_attn))
    ffn = dict(layer_cfg.pop('ffn_cfg', {}))
    if layer_cfg:
        raise M2FConfigError(f'{where}: unsupported keys {sorted(layer_cfg)}')
    for attn in (self_attn, cross_attn):
        check_attention_ffn(attn, ffn, where)
    dims = {self_attn.get('embed_dims', 256), cross_attn.get('embed_dims', 256), ffn.get('embed_dims', 256)}
    heads = {self_attn.get('num_heads', 8), cross_attn.get('num_heads', 8)}
    if len(dims) != 1 or len(heads) != 1:
        raise M2FConfigError(f'{where}: attention / FFN must share embed_dims and num_heads, got embed_dims '
                             f'{sorted(dims)}, num_heads {sorted(heads)}')
    return dict(embed_dims=dims.pop(), num_heads=heads.pop(),
                feedforward_channels=ffn.get('feedforward_channels', 2048))


_DETR_ATTN_KEYS = {'embed_dims', 'num_heads', 'dropout', 'attn_drop', 'proj_drop', 'dropout_layer', 'batch_first'}
_DETR_FFN_KEYS = {'embed_dims', 'feedforward_channels', 'num_fcs', 'ffn_drop', 'act_cfg', 'dropout_layer',
                  'add_identity'}


def _drop_prob(dropout_layer: Optional[dict], where: str) -> float:
    """mmcv's ``dropout_layer`` (None or ``dict(type='Dropout', drop_prob=p)``) -> p."""
    if dropout_layer is None:
        return 0.0
    layer = dict(dropout_layer)
    if layer.get('type', 'Dropout') != 'Dropout':
        raise M2FConfigError(f'{where}: dropout_layer={dropout_layer} is not supported; only Dropout')
    return float(layer.get('drop_prob', 0.0))


def _detr_attention_drops(attn: dict, where: str) -> Tuple[float, float]:
    """(dropout on the attention weights, dropout on the attention output) of an mmcv MultiheadAttention cfg.

    ``dropout=p`` (mmdet's configs) means both; mmseg's configs give ``attn_drop`` / ``proj_drop`` with
    ``dropout_layer=None``."""
    unknown = set(attn) - _DETR_ATTN_KEYS
    if unknown:
        raise M2FConfigError(f'{where}: unsupported attention keys {sorted(unknown)}; allowed {sorted(_DETR_ATTN_KEYS)}')
    if not attn.get('batch_first', True):
        raise M2FConfigError(f'{where}: batch_first=False is not supported; tensors are [B, N, D]')
    if 'dropout' in attn:
        return float(attn['dropout']), float(attn['dropout'])
    proj = float(attn.get('proj_drop', 0.0))
    layer = _drop_prob(attn.get('dropout_layer', dict(type='Dropout', drop_prob=0.0)), where)
    if proj and layer:
        raise M2FConfigError(f'{where}: proj_drop={proj} and dropout_layer drop_prob={layer} would drop twice; use one')
    return float(attn.get('attn_drop', 0.0)), proj or layer


def detr_layer_kwargs(layer_cfg: dict, where: str, cross_attention: bool) -> Dict:
    """Our DETR layer keywords (``embed_dims``, ``num_heads``, ``feedforward_channels``, ``dropout``) from
    ours or mmdet's / mmseg's ``self_attn_cfg`` (+ ``cross_attn_cfg`` for a decoder layer) + ``ffn_cfg``.

    Our layers apply one ``dropout`` to the attention weights, the attention output, after the FFN's
    activation and to the FFN's output (DETR's and MaskFormer's setting); sub-configs asking for
    different probabilities are refused rather than merged."""
    layer_cfg = dict(layer_cfg)
    check_layer_norm(layer_cfg.pop('norm_cfg', None), where)
    if not {'self_attn_cfg', 'cross_attn_cfg', 'ffn_cfg'} & set(layer_cfg):
        return layer_cfg
    attns = [dict(layer_cfg.pop('self_attn_cfg', {}))]
    if cross_attention:
        attns.append(dict(layer_cfg.pop('cross_attn_cfg', attns[0])))
    ffn = dict(layer_cfg.pop('ffn_cfg', {}))
    if layer_cfg:
        raise M2FConfigError(f'{where}: unsupported keys {sorted(layer_cfg)}')
    unknown = set(ffn) - _DETR_FFN_KEYS
    if unknown:
        raise M2FConfigError(f'{where}.ffn_cfg: unsupported keys {sorted(unknown)}; allowed {sorted(_DETR_FFN_KEYS)}')
    if int(ffn.get('num_fcs', 2)) != 2 or not ffn.get('add_identity', True):
        raise M2FConfigError(f'{where}.ffn_cfg: only 2-layer FFNs with a residual (num_fcs=2, add_identity=True)')
    act = dict(ffn.get('act_cfg', dict(type='ReLU')))
    if act.get('type', 'ReLU') != 'ReLU':
        raise M2FConfigError(f'{where}.ffn_cfg: only ReLU FFNs are supported, got {act}')
    ffn_drop = float(ffn.get('ffn_drop', 0.0))
    if _drop_prob(ffn.get('dropout_layer'), where):
        raise M2FConfigError(f'{where}.ffn_cfg: dropout_layer would drop the FFN output a second time; use ffn_drop')
    drops = {ffn_drop}
    for attn in attns:
        drops.update(_detr_attention_drops(attn, where))
    dims = {a.get('embed_dims', 256) for a in attns} | {ffn.get('embed_dims', 256)}
    heads = {a.get('num_heads', 8) for a in attns}
    if len(dims) != 1 or len(heads) != 1 or len(drops) != 1:
        raise M2FConfigError(f'{where}: attention / FFN must share embed_dims, num_heads and one dropout probability, '
                             f'got embed_dims {sorted(dims)}, num_heads {sorted(heads)}, dropout {sorted(drops)}')
    return dict(embed_dims=dims.pop(), num_heads=heads.pop(),
                feedforward_channels=ffn.get('feedforward_channels', 2048), dropout=drops.pop())


def sine_encoding_kwargs(cfg: Optional[dict], dims: int, where: str) -> Dict:
    """Keywords of mmdet's ``SinePositionalEncoding`` for a ``dims``-wide model (default: dims / 2
    features, normalized). Another encoding ``type`` or a width that does not add up is refused."""
    cfg = dict(cfg or dict(num_feats=dims // 2, normalize=True))
    kind = cfg.pop('type', None)
    if kind not in SINE_TYPES:
        raise M2FConfigError(f'{where}.type={kind!r}: only the sine encoding of the paper (SinePositionalEncoding) '
                             'is implemented')
    if cfg.get('num_feats', 0) * 2 != dims:
        raise M2FConfigError(f'{where}.num_feats * 2 must equal the width {dims}, got num_feats={cfg.get("num_feats")}')
    return cfg


def require_class_counts(where: str, **counts: Optional[int]) -> None:
    """Raise when a class count is unset (None): m2f_mm fills them from the data when it builds the model.

    The configs leave class counts to the data (``m2f_mm/config``); a model built from such a config
    without m2f_mm's resolution (e.g. mmdet's ``DetInferencer`` with a repository config) lands here.
    """
    unset = [name for name, value in counts.items() if value is None]
    if unset:
        from m2f_mm.errors import M2FConfigError
        raise M2FConfigError(
            f'{where}.{" / ".join(unset)} is None, meaning "the dataset\'s": m2f_mm fills it from the data when it '
            'builds the model (tools/*.py, M2FRunner, m2f_mm.apis.init_model, M2FDetInferencer). This model was '
            'built from an unresolved config: build it through one of those, pass the config saved with the '
            'checkpoint (work_dir/CONFIG.py, or model=None to an inferencer), or set the counts')
