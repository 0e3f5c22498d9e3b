"""Tables (and later plots) from a study's MLflow runs."""
