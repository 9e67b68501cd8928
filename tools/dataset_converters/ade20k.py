"""ADE20K panoptic and instance annotations in COCO format, without panopticapi.

    python tools/dataset_converters/ade20k.py data/ade/ADEChallengeData2016 --catid-mapping MAPPING.txt

Reads, under the dataset root (the SceneParsing release plus its instance annotations):

    images/{training,validation}/*.jpg
    annotations/{training,validation}/*.png           semantic: 0 = unlabeled, 1..150 the classes
    annotations_instance/{training,validation}/*.png  R = instance class 1..100, G = instance index (0: none)

and writes the files facebookresearch/Mask2Former's ``datasets/prepare_ade20k_pan_seg.py`` and
``prepare_ade20k_ins_seg.py`` write, which m2f_mm's ADE20K configs read:

    ade20k_panoptic_{train,val}.json + ade20k_panoptic_{train,val}/*.png   (COCO panoptic)
    ade20k_instance_{train,val}.json                                       (COCO instances, RLE)

Category ids are the 0-based semantic ids (0 = wall ... 149 = flag); a class is a thing when an
instance class maps to it. Stuff segments come from the semantic map, one per class; thing
segments from the instance map, pasted over it. MAPPING.txt maps instance classes to semantic
classes: its first line is a header, then ``instance_id semantic_id [full_ade_id]`` per line
(``ade20k_instance_catid_mapping.txt`` of facebookresearch/Mask2Former's ``datasets/``, the same
table as the instance release's ``categoryMapping.txt``). Class names and colours are mmseg's.
"""
import argparse
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

SPLITS = {'train': 'training', 'val': 'validation'}


def read_catid_mapping(path: str) -> Dict[int, int]:
    """MAPPING.txt -> {instance class (1-based): semantic category id (0-based)}."""
    mapping: Dict[int, int] = {}
    with open(path) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if len(fields) >= 2:
                mapping[int(fields[0])] = int(fields[1]) - 1
    if not mapping:
        raise ValueError(f'{path}: no "instance_id semantic_id" lines after the header')
    return mapping


def _bbox(mask: np.ndarray) -> List[int]:
    """mask [H, W] bool -> COCO box [x, y, w, h] (pixel-inclusive)."""
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def panoptic_image(semantic: np.ndarray, instance: np.ndarray, ins2sem: Dict[int, int],
                   thing_ids: Sequence[int]) -> Tuple[np.ndarray, List[dict]]:
    """semantic [H, W] uint8 (0 = void), instance [H, W, 3] uint8 -> (ids [H, W] int64, segments_info).

    Segment ids: stuff class c -> c + 1 (never 0 = VOID); thing k of class c -> 1000 * (c + 1) + k.
    """
    ids = np.zeros(semantic.shape, dtype=np.int64)
    segments = []
    for label in np.unique(semantic):
        cat = int(label) - 1
        if label == 0 or cat in thing_ids:
            continue
        mask = semantic == label
        ids[mask] = cat + 1
        segments.append(dict(id=cat + 1, category_id=cat, area=int(mask.sum()), bbox=_bbox(mask), iscrowd=0))
    for k, index in enumerate(i for i in np.unique(instance[..., 1]) if i != 0):
        mask = instance[..., 1] == index
        classes = np.unique(instance[..., 0][mask])
        if len(classes) != 1 or int(classes[0]) not in ins2sem:
            raise ValueError(f'instance {index} has instance classes {classes.tolist()}, expected one of the mapping')
        cat = ins2sem[int(classes[0])]
        ids[mask] = 1000 * (cat + 1) + k + 1
    for seg_id in np.unique(ids[ids >= 1000]):  # after pasting: areas of what remains visible
        mask = ids == seg_id
        segments.append(dict(id=int(seg_id), category_id=int(seg_id // 1000 - 1), area=int(mask.sum()),
                             bbox=_bbox(mask), iscrowd=0))
    return ids, segments


def instance_annotations(instance: np.ndarray, ins2sem: Dict[int, int], image_id: str, first_id: int) -> List[dict]:
    """instance [H, W, 3] uint8 -> COCO instance annotations (RLE masks) numbered from first_id."""
    import pycocotools.mask as mask_utils
    anns = []
    for index in (i for i in np.unique(instance[..., 1]) if i != 0):
        mask = instance[..., 1] == index
        cat = ins2sem[int(np.unique(instance[..., 0][mask])[0])]
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        anns.append(dict(id=first_id + len(anns), image_id=image_id, category_id=cat, iscrowd=0, bbox=_bbox(mask),
                         area=int(mask.sum()), segmentation=rle))
    return anns


def categories(thing_ids: Sequence[int]) -> List[dict]:
    """The 150 ADE20K categories (mmseg's names and colours), ids 0-149, with ``isthing``."""
    from mmseg.datasets import ADE20KDataset
    meta = ADE20KDataset.METAINFO
    return [dict(id=i, name=name.strip(), color=list(meta['palette'][i]), isthing=int(i in thing_ids))
            for i, name in enumerate(meta['classes'])]


def convert_split(root: str, split: str, ins2sem: Dict[int, int]) -> Tuple[str, str]:
    """Write the panoptic JSON + PNGs and the instance JSON of one split; returns the two JSON paths."""
    from m2f_mm.structures.panoptic_format import id2rgb
    folder = SPLITS[split]
    thing_ids = sorted(set(ins2sem.values()))
    cats = categories(thing_ids)
    png_dir = osp.join(root, f'ade20k_panoptic_{split}')
    os.makedirs(png_dir, exist_ok=True)
    images, pan_anns, ins_anns = [], [], []
    for path in sorted(glob.glob(osp.join(root, 'images', folder, '*.jpg'))):
        stem = osp.splitext(osp.basename(path))[0]
        width, height = Image.open(path).size
        semantic = np.asarray(Image.open(osp.join(root, 'annotations', folder, stem + '.png')))
        instance = np.asarray(Image.open(osp.join(root, 'annotations_instance', folder, stem + '.png')).convert('RGB'))
        ids, segments = panoptic_image(semantic, instance, ins2sem, thing_ids)
        Image.fromarray(id2rgb(ids)).save(osp.join(png_dir, stem + '.png'))
        images.append(dict(id=stem, file_name=osp.basename(path), width=width, height=height))
        pan_anns.append(dict(image_id=stem, file_name=stem + '.png', segments_info=segments))
        ins_anns += instance_annotations(instance, ins2sem, stem, len(ins_anns) + 1)
    if not images:
        raise FileNotFoundError(f'no images under {osp.join(root, "images", folder)}')
    pan_json = osp.join(root, f'ade20k_panoptic_{split}.json')
    ins_json = osp.join(root, f'ade20k_instance_{split}.json')
    with open(pan_json, 'w') as f:
        json.dump(dict(images=images, annotations=pan_anns, categories=cats), f)
    with open(ins_json, 'w') as f:
        json.dump(dict(images=images, annotations=ins_anns,
                       categories=[dict(id=c['id'], name=c['name']) for c in cats if c['isthing']]), f)
    return pan_json, ins_json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('root', help='ADEChallengeData2016 folder, e.g. data/ade/ADEChallengeData2016')
    parser.add_argument('--catid-mapping', required=True, help='instance -> semantic class table (see below)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'], choices=sorted(SPLITS),
                        help='which ADEChallengeData2016 splits to convert (default: train val)')
    args = parser.parse_args(argv)
    ins2sem = read_catid_mapping(args.catid_mapping)
    for split in args.splits:
        for path in convert_split(args.root, split, ins2sem):
            print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    from m2f_mm.errors import run_main
    run_main(main)
