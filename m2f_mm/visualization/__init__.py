"""Drawing: figures of predictions (pure numpy + PIL) and the registered mmdet visualizer."""
from .figures import instance_figure, panoptic_figure, semantic_figure
from .visualizer import M2FDetLocalVisualizer

__all__ = ['M2FDetLocalVisualizer', 'instance_figure', 'panoptic_figure', 'semantic_figure']
