"""Parametrised augmentations: sample parameters, apply given parameters (exact replay)."""
