"""Cityscapes semantic, panoptic and instance annotations for m2f_mm's Cityscapes configs.

    pip install cityscapesscripts
    python tools/dataset_converters/cityscapes.py data/cityscapes [--tasks semantic panoptic instance]

Reads the fine annotations (``gtFine/{train,val}/<city>/*_gtFine_{labelIds,instanceIds,polygons}``)
and writes, with cityscapesscripts (PyPI) for the first two:

* ``semantic``: ``*_gtFine_labelTrainIds.png`` (``createTrainIdLabelImgs``), read by mmseg's
  ``CityscapesDataset`` (19 classes);
* ``panoptic``: ``gtFine/cityscapes_panoptic_{train,val}.json`` + ``gtFine/cityscapes_panoptic_{train,val}/``
  (``createPanopticImgs``: COCO panoptic, category ids = label ids), read by ``M2FCityscapesPanopticDataset``;
* ``instance``: ``annotations/instancesonly_filtered_gtFine_{train,val}.json``, COCO instances (RLE
  masks from ``*_instanceIds.png``, the 8 classes with instances), the file name and layout mmdet's
  ``CityscapesDataset`` reads (``file_name`` = ``<city>/<image>_leftImg8bit.png``).
"""
import argparse
import glob
import json
import os
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

TASKS = ('semantic', 'panoptic', 'instance')


def _cityscapes_labels():
    try:
        from cityscapesscripts.helpers.labels import labels
    except ImportError as err:
        raise SystemExit('this step needs cityscapesscripts: pip install cityscapesscripts') from err
    return labels


def instance_categories(labels) -> List[dict]:
    """The evaluated Cityscapes classes with instances (person ... bicycle), ids = label ids."""
    return [dict(id=int(lab.id), name=lab.name) for lab in labels if lab.hasInstances and not lab.ignoreInEval]


def instance_annotations(instance_ids: np.ndarray, category_ids: Sequence[int], image_id: int,
                         first_id: int) -> List[dict]:
    """``*_instanceIds.png`` [H, W] (label * 1000 + k for instances, the label id for crowd / stuff) ->
    COCO annotations (RLE) of the instances of ``category_ids``, numbered from ``first_id``."""
    import pycocotools.mask as mask_utils
    anns = []
    for seg_id in np.unique(instance_ids):
        if seg_id < 1000 or seg_id // 1000 not in category_ids:
            continue
        mask = instance_ids == seg_id
        ys, xs = np.nonzero(mask)
        box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        anns.append(dict(id=first_id + len(anns), image_id=image_id, category_id=int(seg_id // 1000), iscrowd=0,
                         bbox=box, area=int(mask.sum()), segmentation=rle))
    return anns


def convert_instances(root: str, split: str, labels) -> str:
    """Write ``annotations/instancesonly_filtered_gtFine_{split}.json``; returns its path."""
    cats = instance_categories(labels)
    cat_ids = [c['id'] for c in cats]
    images, anns = [], []
    for path in sorted(glob.glob(osp.join(root, 'gtFine', split, '*', '*_gtFine_instanceIds.png'))):
        city, name = osp.basename(osp.dirname(path)), osp.basename(path)
        ids = np.asarray(Image.open(path)).astype(np.int64)
        image_anns = instance_annotations(ids, cat_ids, len(images), len(anns) + 1)
        if not image_anns:  # 'filtered': as mmdet's converter, images without instances are left out
            continue
        images.append(dict(id=len(images), file_name=f"{city}/{name.replace('_gtFine_instanceIds', '_leftImg8bit')}",
                           height=int(ids.shape[0]), width=int(ids.shape[1]),
                           segm_file=f"{city}/{name.replace('_instanceIds', '_labelTrainIds')}"))
        anns += image_anns
    if not images:
        raise FileNotFoundError(f'no *_gtFine_instanceIds.png with instances under {osp.join(root, "gtFine", split)}')
    out = osp.join(root, 'annotations', f'instancesonly_filtered_gtFine_{split}.json')
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return out


def run(root: str, tasks: Sequence[str], splits: Sequence[str]) -> List[Tuple[str, str]]:
    """Run the steps; returns (task, what was written)."""
    done = []
    if 'semantic' in tasks:
        labels = _cityscapes_labels()  # noqa: F841  (fails early with the install hint)
        from cityscapesscripts.preparation import createTrainIdLabelImgs
        os.environ['CITYSCAPES_DATASET'] = root
        createTrainIdLabelImgs.main()
        done.append(('semantic', osp.join(root, 'gtFine', '*', '*', '*_gtFine_labelTrainIds.png')))
    if 'panoptic' in tasks:
        _cityscapes_labels()
        from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic
        gt_fine = osp.join(root, 'gtFine')
        convert2panoptic(cityscapesPath=gt_fine, outputFolder=gt_fine, useTrainId=False, setNames=list(splits))
        done += [('panoptic', osp.join(gt_fine, f'cityscapes_panoptic_{s}.json')) for s in splits]
    if 'instance' in tasks:
        labels = _cityscapes_labels()
        done += [('instance', convert_instances(root, s, labels)) for s in splits]
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('root', help='Cityscapes folder holding gtFine/ and leftImg8bit/, e.g. data/cityscapes')
    parser.add_argument('--tasks', nargs='+', default=list(TASKS), choices=TASKS,
                        help='which annotation files to write (default: all)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'], choices=['train', 'val', 'test'],
                        help='which gtFine splits to convert (default: train val)')
    args = parser.parse_args(argv)
    for task, path in run(osp.abspath(args.root), args.tasks, args.splits):
        print(f'{task}: wrote {path}')
    return 0


if __name__ == '__main__':
    from m2f_mm.errors import run_main
    run_main(main)
