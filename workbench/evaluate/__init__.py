"""Evaluation: zero-shot classification, image↔text retrieval, and the default suite (``suite.yaml``).

The names below load with their module on first use, so reading a suite file (``spec.py``, which config
validation does) imports no torch.
"""

import importlib

_HOMES = {"DatasetMissingError": "data", "clear_cache": "data",
          "RetrievalScores": "retrieval", "recall_at_k": "retrieval", "score_retrieval": "retrieval",
          "DEFAULT_SUITE": "spec", "RetrievalTask": "spec", "Suite": "spec", "ZeroShotTask": "spec",
          "load_suite": "spec",
          "SuiteResult": "suite", "TaskResult": "suite", "run_suite": "suite",
          "ZeroShotScores": "zeroshot", "class_embeddings": "zeroshot", "score_zeroshot": "zeroshot"}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
