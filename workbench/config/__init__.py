"""Typed configs: the recipe a trial trains with, the study file that varies it, and their loading."""
