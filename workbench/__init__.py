"""workbench: an experiment-tracked ablation workbench for multi-modal reinforced CLIP training."""

__version__ = "0.1.0"
