"""Find every bad sample of a dataset before training, through the real loading code.

``tools/misc/check_dataset.py`` is the command; this module is its library. For each sample it
checks, without stopping at the first problem:

1. the files exist (image, annotation PNG);
2. the image decodes completely (a truncated JPEG that OpenCV half-decodes is caught too);
3. the config's loading transforms run (``LoadImageFromFile``, ``M2FLoadPanopticAnnotations`` with
   its PNG-against-JSON id and size checks, mmdet's / mmseg's ``LoadAnnotations`` ...); the
   augmentations between and after them are not needed to judge the data and are skipped;
4. the labels they produce lie in the dataset's classes (semantic maps: ``[0, C)`` or the ignore
   index; instance labels: ``[0, C)``);
5. the image, its annotation entry and its label maps / masks have one size.

Annotation-file problems found while the dataset is parsed (an unknown ``category_id``, repeated
image or segment ids, ids of the wrong type, paths leaving the data folder) are collected per image
for datasets that support it (``M2FCocoPanopticDataset(bad_annotations='collect')``).
"""
import os.path as osp
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np

KINDS = {
    'missing file': 'restore the file or remove the image from the annotation file',
    'unreadable image': 're-encode or replace the image (it is truncated or not an image)',
    'annotation disagrees with its PNG': 'regenerate the panoptic PNG / JSON pair from the same source',
    'unknown category': "add the category to the config's metainfo classes or fix the annotation",
    'label out of range': 'map the label to the ignore index (255) or add the class to the config',
    'duplicate image id': 'give every image entry its own id, and each image exactly one annotations[] entry',
    'duplicate segment id': 'give each segment of the image its own id (PNG colour and segments_info entry) or '
                            'delete the repeated entry',
    'id of the wrong type': 'write image, segment and category ids as JSON integers (not strings, booleans or '
                            'fractions; ADE20K / Cityscapes datasets accept string image ids)',
    'image size differs from annotation': 're-export the image at the size its annotation describes, or '
                                          'regenerate the annotation (width/height, label PNG) from this image',
    'path outside the data root': "make file_name lead to a file under the data root (no '..' out of it, no "
                                  'absolute path elsewhere), or, for files kept elsewhere on purpose, set the '
                                  'dataset option allow_outside_data_root=True',
    'malformed annotation entry': 'give the entry the keys of the COCO panoptic format (id, file_name, '
                                  'segments_info with id and category_id)',
    'loading failed': 'see the problem text',
}


@dataclass
class Problem:
    """One thing wrong with one sample."""
    split: str
    file: str
    img_id: object
    kind: str
    detail: str

    @property
    def fix(self) -> str:
        return KINDS.get(self.kind, KINDS['loading failed'])

    def __str__(self) -> str:
        return f'[{self.split}] {self.file} (image id {self.img_id}): {self.kind}: {self.detail}. Fix: {self.fix}'


def image_decodes(path: str) -> Optional[str]:
    """``None`` if the image at ``path`` decodes completely, else what is wrong."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as err:  # noqa: BLE001  any decode failure is the answer
        return f'{type(err).__name__}: {err}'
    return None


def _kind_of(err: Exception) -> str:
    if getattr(err, 'kind', None) in KINDS:  # panoptic.AnnotationMismatchError
        return err.kind
    text = str(err)
    if 'segments_info' in text or 'panoptic PNG' in text:
        return 'annotation disagrees with its PNG'
    if isinstance(err, (FileNotFoundError, OSError)) or 'failed to load image' in text or 'cannot read' in text:
        return 'unreadable image'
    return 'loading failed'


def _loading_transforms(pipeline) -> list:
    """The transforms of ``pipeline`` whose class name says they load (``Load*``), in order: test
    pipelines load annotations after a ``Resize``, which judging the data does not need."""
    transforms = getattr(pipeline, 'transforms', pipeline)
    return [t for t in transforms if 'Load' in type(t).__name__]


def size_problems(results: dict) -> List[str]:
    """Loaded annotations whose size differs from the decoded image (``ori_shape``) in ``results``.

    Checks the annotation's ``height`` / ``width`` (COCO image entries), the semantic map and the
    instance masks, whichever loaders ran: any transform can then be trusted to see aligned data."""
    if 'ori_shape' not in results:
        return []
    image_hw = tuple(int(v) for v in results['ori_shape'][:2])
    found = []
    if 'height' in results and 'width' in results and (results['height'], results['width']) != image_hw:
        found.append(f'image decodes to {image_hw[0]}x{image_hw[1]} (HxW) but its annotation entry says '
                     f'{results["height"]}x{results["width"]}')
    seg = results.get('gt_seg_map')
    if seg is not None and tuple(np.shape(seg)[:2]) != image_hw:
        found.append(f'label map {results.get("seg_map_path", "")} is {"x".join(map(str, np.shape(seg)))} but its '
                     f'image decodes to {image_hw[0]}x{image_hw[1]} (HxW)')
    masks = results.get('gt_masks')
    if masks is not None and len(masks) and (masks.height, masks.width) != image_hw:
        found.append(f'instance masks are {masks.height}x{masks.width} but the image decodes to '
                     f'{image_hw[0]}x{image_hw[1]} (HxW)')
    return found[:1]  # one line per sample: the first disagreement names the files


def label_problems(results: dict, num_classes: int, ignore_index: int = 255) -> List[str]:
    """Labels outside ``[0, num_classes)`` (semantic: or ``ignore_index``) in loaded ``results``."""
    found = []
    seg = results.get('gt_seg_map')
    if seg is not None:
        values = np.unique(np.asarray(seg))
        bad = values[((values < 0) | (values >= num_classes)) & (values != ignore_index)]
        if len(bad):
            found.append(f'semantic map holds labels {bad.tolist()[:10]}, the dataset has {num_classes} classes '
                         f'(0..{num_classes - 1}, {ignore_index} = ignore)')
    labels = results.get('gt_bboxes_labels')
    if labels is not None and len(labels):
        labels = np.asarray(labels)
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if len(bad):
            found.append(f'instance labels {np.unique(bad).tolist()[:10]} outside 0..{num_classes - 1}')
    return found


def check_sample(dataset, idx: int, split: str, num_classes: int, ignore_index: int = 255) -> List[Problem]:
    """Every problem of sample ``idx`` of a built (fully initialised) mmengine dataset."""
    info = dataset.get_data_info(idx)
    name = info.get('img_path', f'sample {idx}')
    img_id = info.get('img_id', idx)

    def problem(kind: str, detail: str, file: str = name) -> Problem:
        return Problem(split, file, img_id, kind, detail)

    missing = [info[k] for k in ('img_path', 'seg_map_path') if info.get(k) and not osp.exists(info[k])]
    if missing:
        return [problem('missing file', f'{path} does not exist', path) for path in missing]
    if info.get('img_path'):
        broken = image_decodes(info['img_path'])
        if broken:
            return [problem('unreadable image', broken)]
    results = dataset.get_data_info(idx)
    try:
        for transform in _loading_transforms(dataset.pipeline):
            results = transform(results)
            if results is None:
                return [problem('loading failed', f'{type(transform).__name__} returned None')]
    except Exception as err:  # noqa: BLE001  each failure is reported, the check goes on
        return [problem(_kind_of(err), getattr(err, 'problem', None) or f'{type(err).__name__}: {err}')]
    sizes = size_problems(results)
    if sizes:
        return [problem('image size differs from annotation', sizes[0])]
    return [problem('label out of range', text) for text in label_problems(results, num_classes, ignore_index)]


def check_indices(dataset, indices: Iterable[int], split: str, num_classes: int,
                  ignore_index: int = 255, progress: Optional[Callable[[], None]] = None) -> List[Problem]:
    """:func:`check_sample` over ``indices``; ``progress()`` after each sample."""
    found = []
    for idx in indices:
        found += check_sample(dataset, idx, split, num_classes, ignore_index)
        if progress is not None:
            progress()
    return found


def summary(problems: Sequence[Problem], num_samples: int) -> str:
    """One line per kind of problem with its count, then the total."""
    if not problems:
        return f'checked {num_samples} samples: no problems found'
    counts = Counter(p.kind for p in problems)
    lines = [f'{count:6d}  {kind}' for kind, count in counts.most_common()]
    files = len({(p.split, p.file) for p in problems})
    return '\n'.join(lines + [f'{len(problems)} problems in {files} of {num_samples} samples'])


def as_dicts(problems: Sequence[Problem]) -> List[dict]:
    return [dict(asdict(p), fix=p.fix) for p in problems]
