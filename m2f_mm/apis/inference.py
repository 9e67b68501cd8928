"""Predict with an m2f_mm config + checkpoint on images: one API for the mmdet and the mmseg configs.

    from m2f_mm.apis import init_model, inference_model
    model = init_model('configs/m2f_r18-q24_1xb8-2k_synthetic-panoptic.py', 'iter_2000.pth', device='cpu')
    sample = inference_model(model, 'image.jpg')          # one DetDataSample (mmdet configs)
    samples = inference_model(model, ['a.jpg', image])    # a list; arrays are BGR [H, W, 3] uint8 (cv2)

mmdet configs fill ``pred_panoptic_seg`` / ``pred_instances`` / ``pred_sem_seg`` (as their
``test_cfg`` enables), mmseg configs ``pred_sem_seg``; all at the original image size.

Unlike ``mmdet.apis.init_detector`` / ``mmseg.apis.init_model``, a checkpoint is enough: the config it
was trained with is stored in it (``meta.cfg``), so ``init_model(None, 'iter_2000.pth')`` works, and with a
repository config the model takes the checkpoint's classes (``meta.dataset_meta``) whatever data the
config names (m2f_mm/config). A checkpoint without class names falls back to the config's dataset
classes (not COCO's / Cityscapes'), and images need no annotation entry: every annotation loader is
dropped from the test pipeline.
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope, init_default_scope

from ..checkpoints.loading import load_checkpoint_file, load_into
from ..errors import M2FConfigError
from ..utils.env import check_environment

ImageType = Union[str, np.ndarray]


def config_scope(cfg: Config) -> str:
    """'mmdet' or 'mmseg': the registry scope the config builds in (``default_scope``)."""
    scope = cfg.get('default_scope', 'mmdet')
    if scope not in ('mmdet', 'mmseg'):
        raise M2FConfigError(f"default_scope must be 'mmdet' or 'mmseg' for m2f_mm configs, got {scope!r}")
    return scope


def dataset_meta_from_config(cfg: Config) -> dict:
    """The test dataset's metainfo: its class's ``METAINFO`` updated with the config's ``metainfo`` (which
    :func:`m2f_mm.config.resolve_config` fills from the dataset's files when they are on this machine)."""
    dataset = cfg.test_dataloader.dataset
    scope = config_scope(cfg)
    registry = __import__(f'{scope}.registry', fromlist=['DATASETS']).DATASETS
    dataset_cls = registry.get(dataset.type)
    meta = copy.deepcopy(dict(getattr(dataset_cls, 'METAINFO', {}) or {}))
    meta.update(copy.deepcopy(dict(dataset.get('metainfo') or {})))
    if 'classes' not in meta:
        raise M2FConfigError(f'cannot tell the class names: {dataset.type} has no METAINFO and the config sets no '
                             'test_dataloader.dataset.metainfo.classes')
    return meta


def load_config(config: Union[str, Config, None], cfg_options: Optional[dict] = None,
                checkpoint: Optional[dict] = None, checkpoint_name: str = 'the checkpoint') -> Config:
    """A config from a path or a Config (copied), or, for ``config=None``, the one stored in ``checkpoint``
    (mmengine's runner saves it as ``meta.cfg``), with ``cfg_options`` merged in (not resolved)."""
    if config is None:
        text = config_text_of(checkpoint)
        if text is None:
            raise M2FConfigError(f'{checkpoint_name} holds no config (meta.cfg), so a config must be given: '
                                 'init_model(CONFIG, CHECKPOINT) / image_demo.py IMAGE CONFIG --weights CHECKPOINT')
        cfg = Config.fromstring(text, file_format='.py')
    elif isinstance(config, (str, bytes)) or hasattr(config, '__fspath__'):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file {config!r} does not exist')
        cfg = Config.fromfile(config)
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        raise TypeError(f'config must be a file path, a Config or None, got {type(config).__name__}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def config_text_of(checkpoint: Optional[dict]) -> Optional[str]:
    """The config a checkpoint was trained with (mmengine saves it in ``meta.cfg`` and the message hub)."""
    if not isinstance(checkpoint, dict):
        return None
    text = (checkpoint.get('meta') or {}).get('cfg')
    if not text:
        text = ((checkpoint.get('message_hub') or {}).get('runtime_info') or {}).get('cfg')
    return text if isinstance(text, str) and text.strip() else None


def prepare_inference_config(config, checkpoint: Optional[dict], cfg_options: Optional[dict] = None,
                             checkpoint_name: str = 'the checkpoint') -> Config:
    """The config to build an inference model from: ``config`` (or the checkpoint's own, when None) resolved
    for the checkpoint's classes (:func:`m2f_mm.config.resolve_config`, purpose 'inference')."""
    from ..config import resolve_config
    cfg = load_config(config, cfg_options, checkpoint, checkpoint_name)
    meta = (checkpoint.get('meta') or {}) if isinstance(checkpoint, dict) else {}
    resolve_config(cfg, 'inference', dataset_meta=meta.get('dataset_meta'),
                   meta_source=f'{checkpoint_name} (meta.dataset_meta)')
    return cfg


def init_model(config: Union[str, Config, None], checkpoint: Optional[str] = None, device: str = 'cpu',
               cfg_options: Optional[dict] = None, partial: bool = False) -> torch.nn.Module:
    """Build the config's model in eval mode on ``device`` and load ``checkpoint`` (None: random weights).

    ``config=None`` takes the config stored in the checkpoint. The model's classes are the checkpoint's
    (``meta.dataset_meta``), else those of the config's data; the model gets ``cfg`` (the resolved
    config) and ``dataset_meta``. The checkpoint is read without running code and must fit the model
    (:class:`~m2f_mm.errors.M2FCheckpointError` names keys, shapes and the fix); ``partial=True``
    loads what fits and logs what stayed at initialisation.
    """
    check_environment()
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise M2FConfigError(f'device {device!r} was asked for, but torch.cuda.is_available() is False '
                             f'(torch {torch.__version__}); use device="cpu" or install a CUDA build of torch')
    ckpt = None
    if checkpoint is not None:
        if not osp.exists(checkpoint):  # a directory or a broken file: M2FCheckpointError from the loader
            raise FileNotFoundError(f'checkpoint file {checkpoint!r} does not exist')
        ckpt = load_checkpoint_file(checkpoint)
    if config is None and checkpoint is None:
        raise ValueError('init_model needs a config, a checkpoint, or both')
    cfg = prepare_inference_config(config, ckpt, cfg_options, checkpoint or 'the checkpoint')
    scope = config_scope(cfg)
    init_default_scope(scope)
    if checkpoint is not None and cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # the checkpoint has the weights: no pretrained download
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(cfg.model)
    meta = {}
    if ckpt is not None:
        load_into(model, ckpt, partial=partial, filename=checkpoint)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    model.dataset_meta = dict(meta.get('dataset_meta') or dataset_meta_from_config(cfg))
    model.cfg = cfg
    return model.to(device).eval()


def is_annotation_loader(transform: dict) -> bool:
    """LoadAnnotations, LoadPanopticAnnotations, M2FLoadPanopticAnnotations, with or without a scope."""
    return str(transform.get('type', '')).split('.')[-1].endswith('Annotations')


def test_pipeline_cfg(cfg: Config, from_array: bool) -> List[dict]:
    """The config's test pipeline for images without annotations; arrays replace the file loader."""
    pipeline = [copy.deepcopy(dict(t)) for t in cfg.test_dataloader.dataset.pipeline if not is_annotation_loader(t)]
    if not pipeline or 'LoadImageFromFile' not in str(pipeline[0].get('type')):
        raise M2FConfigError('the test pipeline must start with LoadImageFromFile, got '
                             f'{pipeline[0].get("type") if pipeline else "an empty pipeline"}')
    if from_array:
        pipeline[0]['type'] = 'LoadImageFromNDArray'
    return pipeline


def inference_model(model: torch.nn.Module, images: Union[ImageType, Sequence[ImageType]],
                    batch_size: int = 1):
    """Predict on an image (path or BGR array [H, W, 3]) or a list of them.

    Returns one data sample per image (a single sample for a single image): ``DetDataSample`` for
    mmdet configs, ``SegDataSample`` for mmseg configs, predictions at the original image size.
    """
    single = isinstance(images, (str, np.ndarray))
    images = [images] if single else list(images)
    if not images:
        return []
    if not hasattr(model, 'cfg'):
        raise ValueError('model has no .cfg: build it with m2f_mm.apis.init_model')
    from_array = [isinstance(image, np.ndarray) for image in images]
    if any(from_array) and not all(from_array):
        raise TypeError('images must be all paths or all arrays, not a mix')
    for image in images:
        if not from_array[0] and not osp.isfile(image):
            raise FileNotFoundError(f'image file {image!r} does not exist')
    scope = config_scope(model.cfg)
    results = []
    with DefaultScope.overwrite_default_scope(scope):
        pipeline = Compose(test_pipeline_cfg(model.cfg, from_array[0]))
        for start in range(0, len(images), batch_size):
            batch = []
            for index, image in enumerate(images[start:start + batch_size], start):
                data = dict(img=image) if from_array[0] else dict(img_path=image)
                data.update(img_id=index)
                batch.append(pipeline(data))
            with torch.no_grad():
                results.extend(model.test_step(pseudo_collate(batch)))
    return results[0] if single else results
