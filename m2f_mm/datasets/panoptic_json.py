"""Faults of a COCO panoptic annotation file that its index would hide, found on the raw JSON.

pycocotools' index (and mmdet's ``COCOPanoptic`` on top of it) silently reshapes some faults into
wrong training targets: of two image entries with the same id only the last is kept; a segment
listed twice in one ``segments_info`` comes back four times (its id is looked up once per listing,
and each look-up returns both entries); a ``category_id`` of ``"5"`` or ``true`` or a segment id of
``500001.5`` is compared, hashed or cast as if it were the integer. :func:`panoptic_file_faults`
finds these before the index is built and returns the file without the images they touch, so a
loader built on the result never sees them.

Integral floats (``5.0``, as some JSON writers emit integers) are accepted and turned into ints.
"""
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

DUPLICATE_IMAGE = 'duplicate image id'
DUPLICATE_SEGMENT = 'duplicate segment id'
WRONG_TYPE = 'id of the wrong type'
MALFORMED = 'malformed annotation entry'


@dataclass(frozen=True)
class AnnotationFault:
    """One image of the annotation file that cannot be used as written.

    ``file`` is the image's ``file_name`` (``folder='img'``) or, when the image is not known, the
    annotation entry's PNG ``file_name`` (``folder='seg'``); ``img_id`` is the id as written."""
    file: str
    img_id: object
    kind: str
    detail: str
    folder: str = 'img'


def integer_id(value) -> Optional[int]:
    """``value`` as an int when JSON wrote an integer (``5`` or ``5.0``), else None (str, bool, 5.5, null)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _shown(value) -> str:
    return f'{value!r} (a JSON {"boolean" if isinstance(value, bool) else type(value).__name__})'


def category_id_faults(data: dict) -> List[str]:
    """Problems of the file's ``categories`` entries (ids that are not integers), one text each."""
    found = []
    for cat in data.get('categories', []):
        if not isinstance(cat, dict) or 'id' not in cat:
            found.append(f'category entry {cat!r} has no id')
        elif integer_id(cat['id']) is None:
            found.append(f"category {cat.get('name')!r} has id {_shown(cat['id'])}; category ids must be integers")
    return found


def _segment_faults(segments: list) -> Tuple[List[Tuple[str, str]], bool]:
    """(kind, detail) of each fault in one ``segments_info``; normalises integral float ids in place."""
    faults = []
    ids = []
    for seg in segments:
        if not isinstance(seg, dict) or 'id' not in seg or 'category_id' not in seg:
            faults.append((MALFORMED, f'segments_info entry {seg!r} lacks id or category_id'))
            continue
        seg_id, cat_id = integer_id(seg['id']), integer_id(seg['category_id'])
        if seg_id is None:
            faults.append((WRONG_TYPE, f'segment id {_shown(seg["id"])}; segment ids must be integers'))
        else:
            seg['id'] = seg_id
            ids.append(seg_id)
        if cat_id is None:
            faults.append((WRONG_TYPE, f'segment id {seg["id"]!r} has category_id {_shown(seg["category_id"])}; '
                                       'category ids must be integers'))
        else:
            seg['category_id'] = cat_id
    repeated = {seg_id: n for seg_id, n in Counter(ids).items() if n > 1}
    if repeated:
        listing = ', '.join(f'{seg_id} ({n} times)' for seg_id, n in list(repeated.items())[:5])
        faults.append((DUPLICATE_SEGMENT, f'segments_info lists segment id {listing}'))
    return faults, bool(faults)


def panoptic_file_faults(data: dict, string_image_ids: bool = False) -> Tuple[List[AnnotationFault], dict]:
    """The faults of a loaded COCO panoptic file, and a copy of it without the images they touch.

    Args:
        data: the parsed JSON (``images``, ``annotations`` with ``segments_info``, ``categories``);
            its entries are normalised in place (no copy: COCO's training file is large).
        string_image_ids: whether image ids may be strings (ADE20K's and Cityscapes' files use
            them); integers are always accepted.
    Returns:
        (faults, clean): one fault per problem, in file order; ``clean`` holds every other image
        and annotation entry, with integral float ids turned into ints.
    """
    data = dict(data)
    images, anns = data.get('images', []), data.get('annotations', [])
    faults: List[AnnotationFault] = []
    dropped_ids, dropped_images, dropped_anns = set(), set(), set()
    wrong_raw_ids = set()

    def image_id(value):
        if isinstance(value, str) and string_image_ids:
            return value
        return integer_id(value)

    entries: Dict[object, List[int]] = defaultdict(list)
    for k, img in enumerate(images):
        name = img.get('file_name') if isinstance(img, dict) else None
        if not isinstance(name, str) or 'id' not in img:
            faults.append(AnnotationFault(str(name), img.get('id', '?') if isinstance(img, dict) else '?', MALFORMED,
                                          f'image entry {img!r} needs an id and a file_name string'))
            dropped_images.add(k)
            if isinstance(img, dict) and image_id(img.get('id')) is not None:
                dropped_ids.add(image_id(img['id']))  # and its annotation entry
            continue
        norm = image_id(img['id'])
        if norm is None:
            kinds = 'integers or strings' if string_image_ids else 'integers'
            faults.append(AnnotationFault(name, img['id'], WRONG_TYPE,
                                          f'image id {_shown(img["id"])}; image ids must be {kinds}'))
            dropped_images.add(k)
            wrong_raw_ids.add(repr(img['id']))
            continue
        img['id'] = norm
        entries[norm].append(k)
    file_of = {i: images[ks[0]]['file_name'] for i, ks in entries.items()}
    repeated_images = {i for i, ks in entries.items() if len(ks) > 1}
    for i, ks in entries.items():
        if len(ks) > 1:
            names = ', '.join(images[k]['file_name'] for k in ks[:5])
            faults.append(AnnotationFault(file_of[i], i, DUPLICATE_IMAGE,
                                          f'{len(ks)} image entries have id {i!r} ({names}); an index would keep '
                                          'only the last'))
            dropped_ids.add(i)

    ann_entries: Dict[object, List[int]] = defaultdict(list)
    for j, ann in enumerate(anns):
        png = ann.get('file_name') if isinstance(ann, dict) else None
        if not isinstance(ann, dict) or 'image_id' not in ann or not isinstance(ann.get('segments_info'), list) \
                or (png is not None and not isinstance(png, str)):
            raw_id = ann.get('image_id', '?') if isinstance(ann, dict) else '?'
            meant = [i for i in file_of if str(i) == str(raw_id)]
            dropped_ids.update(meant)
            where = (file_of[meant[0]], 'img') if meant else (str(png), 'seg')
            faults.append(AnnotationFault(where[0], raw_id, MALFORMED, f'annotation entry for PNG {png!r} needs an '
                                          'image_id, a segments_info list and a file_name string', where[1]))
            dropped_anns.add(j)
            continue
        norm = image_id(ann['image_id'])
        if norm is None:
            dropped_anns.add(j)
            meant = [i for i in file_of if str(i) == str(ann['image_id'])]
            dropped_ids.update(meant)
            if repr(ann['image_id']) not in wrong_raw_ids:
                where = (file_of[meant[0]], 'img') if meant else (str(png), 'seg')
                faults.append(AnnotationFault(where[0], ann['image_id'], WRONG_TYPE,
                                              f'annotation entry {png!r} has image_id {_shown(ann["image_id"])}; '
                                              f'it must be the image\'s id as written in images[]', where[1]))
            continue
        ann['image_id'] = norm
        ann_entries[norm].append(j)
        seg_faults, bad = _segment_faults(ann['segments_info'])
        where = (file_of[norm], 'img') if norm in file_of else (str(png), 'seg')
        faults += [AnnotationFault(where[0], norm, kind, detail, where[1]) for kind, detail in seg_faults]
        if bad:
            dropped_ids.add(norm)
    for i, js in ann_entries.items():
        if len(js) > 1 and i in file_of and i not in repeated_images:  # one fault per repeated id
            pngs = ', '.join(str(anns[j].get('file_name')) for j in js[:5])
            faults.append(AnnotationFault(file_of[i], i, DUPLICATE_IMAGE,
                                          f'{len(js)} annotation entries have image_id {i!r} (PNGs {pngs}); their '
                                          'segments would be merged'))
            dropped_ids.add(i)

    data['images'] = [img for k, img in enumerate(images) if k not in dropped_images and img['id'] not in dropped_ids]
    data['annotations'] = [ann for j, ann in enumerate(anns)
                           if j not in dropped_anns and ann['image_id'] not in dropped_ids]
    return faults, data
