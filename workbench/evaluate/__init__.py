"""Evaluation: zero-shot classification, image↔text retrieval, and the default suite (``suite.yaml``)."""

from workbench.evaluate.data import DatasetMissingError, clear_cache
from workbench.evaluate.retrieval import RetrievalScores, recall_at_k, score_retrieval
from workbench.evaluate.spec import DEFAULT_SUITE, RetrievalTask, Suite, ZeroShotTask, load_suite
from workbench.evaluate.suite import SuiteResult, TaskResult, run_suite
from workbench.evaluate.zeroshot import ZeroShotScores, class_embeddings, score_zeroshot

__all__ = ["DEFAULT_SUITE", "DatasetMissingError", "RetrievalScores", "RetrievalTask", "Suite", "SuiteResult",
           "TaskResult", "ZeroShotScores", "ZeroShotTask", "class_embeddings", "clear_cache", "load_suite",
           "recall_at_k", "run_suite", "score_retrieval", "score_zeroshot"]
