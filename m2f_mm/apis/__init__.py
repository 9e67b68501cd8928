"""Inference API: build a model from a config + checkpoint, predict on images, save and draw results.

    from m2f_mm.apis import init_model, inference_model, ResultWriter
    model = init_model(CONFIG, CHECKPOINT, device='cpu')
    sample = inference_model(model, 'image.jpg')
    writer = ResultWriter('outputs/results', model.dataset_meta['classes'])
    writer.add(sample, 'image'); writer.close()

``M2FDetInferencer`` is mmdet's ``DetInferencer`` without the panopticapi requirement. tools/demo/image_demo.py
is the command-line front end; docs/usage.md has the commands.
"""
from .inference import dataset_meta_from_config, inference_model, init_model
from .inferencers import M2FDetInferencer
from .results import ResultWriter, prediction_arrays

__all__ = ['init_model', 'inference_model', 'dataset_meta_from_config', 'ResultWriter', 'prediction_arrays',
           'M2FDetInferencer']
