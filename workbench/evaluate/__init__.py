"""Evaluation: zero-shot classification, image↔text retrieval, the suite (``suite.yaml``) and the ``eval``
stage. Import from the modules (``workbench.evaluate.spec`` for the suite schema, ``.suite`` to run one):
the schema must load without torch."""
