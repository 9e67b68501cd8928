"""Data formats shared by datasets, evaluation and apis (numpy only): ``panoptic_format.py``, the COCO
panoptic segment ids, their PNG encoding and panoptic predictions as COCO segments."""
