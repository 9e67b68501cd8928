"""mmdet's ``DetInferencer`` for m2f_mm configs, saving panoptic predictions without panopticapi.

``mmdet.apis.DetInferencer`` itself works with m2f_mm's mmdet configs for pictures and data samples
(``return_datasamples=True``; the configs' ``M2FDetLocalVisualizer`` draws empty panoptic maps), but
its ``pred2dict`` -- used whenever predictions are returned as dicts or saved -- stops with
"panopticapi is not installed". :class:`M2FDetInferencer` is the same inferencer whose dicts carry
the COCO panoptic result (``segments_info`` and the id PNG) computed by m2f_mm::

    from m2f_mm.apis import M2FDetInferencer
    inferencer = M2FDetInferencer(model=None, weights='iter_2000.pth', device='cpu')  # the checkpoint's config
    inferencer = M2FDetInferencer(model='configs/m2f_r18-q24_1xb8-2k_synthetic-panoptic.py',
                                  weights='iter_2000.pth', device='cpu')    # or a config (classes: the checkpoint's)
    result = inferencer('image.jpg', out_dir='outputs/inferencer')   # vis/ and preds/ under out_dir

``MMSegInferencer`` (mmseg) works with m2f_mm's mmseg configs unchanged. mmdet's and mmseg's own
inferencers load checkpoints with mmengine's loader, which torch >= 2.6 refuses for checkpoints holding
mmengine's log buffers (what training writes): build them inside
``with m2f_mm.checkpoints.safe_local_loading():``. :class:`M2FDetInferencer` does that itself and
refuses a checkpoint that does not fit the model.
Shape legend: H x W original image size.
"""
import os
import os.path as osp
from typing import Dict

import mmengine
import numpy as np
from mmdet.apis import DetInferencer
from PIL import Image

from mmengine.config import Config

from ..checkpoints.loading import fitting_state, load_checkpoint_file
from ..checkpoints.safe_load import safe_local_loading
from .inference import dataset_meta_from_config, prepare_inference_config
from .results import panoptic_to_coco


class M2FDetInferencer(DetInferencer):
    """``DetInferencer`` (same arguments and call) whose panoptic output needs no panopticapi.

    ``pred2dict`` adds ``panoptic_seg`` (RGB ids [H, W, 3] uint8, COCO: id = R + 256 G + 256^2 B,
    0 = VOID) and ``segments_info``; with ``out_dir`` it writes ``preds/NAME_panoptic_seg.png`` and
    ``preds/NAME.json`` (where mmdet writes them) instead. A checkpoint without class names gets the
    config's dataset classes (mmdet assumes COCO's).
    """

    def _init_model(self, cfg, weights, device: str = 'cpu'):
        # the model's classes are the checkpoint's, whatever data the config names; model=None takes the
        # checkpoint's own config (m2f_mm/config); cfg is updated in place, as mmengine does for model=None
        checkpoint = load_checkpoint_file(weights) if weights else None
        resolved = prepare_inference_config(Config(dict(cfg)) if cfg else None, checkpoint,
                                            checkpoint_name=weights or 'the checkpoint')
        cfg.update(resolved._cfg_dict)
        with safe_local_loading():  # mmengine checkpoints load without running code (no global change)
            return super()._init_model(cfg, weights, device)

    def _load_weights_to_model(self, model, checkpoint, cfg) -> None:
        if checkpoint is not None:
            fitting_state(model, checkpoint, 'the checkpoint', partial=False)  # names keys, shapes and the fix
        super()._load_weights_to_model(model, checkpoint, cfg)
        if not (checkpoint or {}).get('meta', {}).get('dataset_meta'):
            model.dataset_meta = dataset_meta_from_config(cfg)  # mmdet would assume COCO's classes

    def pred2dict(self, data_sample, pred_out_dir: str = '') -> Dict:
        if 'pred_panoptic_seg' not in data_sample:
            return super().pred2dict(data_sample, pred_out_dir)
        pan = data_sample.pred_panoptic_seg.sem_seg.cpu().numpy()[0].astype(np.int64)
        rest = data_sample.clone()
        del rest.pred_panoptic_seg
        result = super().pred2dict(rest, '')  # instances (if any) as mmdet writes them; nothing saved yet
        classes = self.model.dataset_meta['classes']
        num_things = len(self.model.dataset_meta.get('thing_classes', classes))
        rgb, segments = panoptic_to_coco(pan, len(classes), num_things)
        result['segments_info'] = segments
        if not pred_out_dir:
            result['panoptic_seg'] = rgb
            return result
        if 'img_path' in data_sample:
            name = osp.splitext(osp.basename(data_sample.img_path))[0]
        else:
            name = str(self.num_predicted_imgs)
            self.num_predicted_imgs += 1
        os.makedirs(osp.join(pred_out_dir, 'preds'), exist_ok=True)
        png = osp.join(pred_out_dir, 'preds', f'{name}_panoptic_seg.png')
        Image.fromarray(rgb).save(png)
        result['panoptic_seg_path'] = png
        mmengine.dump(result, osp.join(pred_out_dir, 'preds', f'{name}.json'))
        return result
