"""Where the workbench keeps everything it builds: data shards, stage artifacts, MLflow and Optuna stores.

One folder holds it all, so a study is reproducible by copying (or deleting) that folder. Remote
tracking and Optuna databases are a setting away: any MLflow tracking URI or SQLAlchemy URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "WORKBENCH_HOME"
MLFLOW_ENV = "WORKBENCH_MLFLOW_URI"
OPTUNA_ENV = "WORKBENCH_OPTUNA_STORAGE"


@dataclass(frozen=True)
class Workspace:
    """Paths and store URLs of one workspace."""

    root: Path
    mlflow_uri: str
    optuna_storage: str

    @classmethod
    def resolve(cls, root: str | Path | None = None, mlflow_uri: str | None = None,
                optuna_storage: str | None = None) -> "Workspace":
        """Explicit arguments win, then environment variables, then the embedded defaults."""
        root = Path(root or os.environ.get(HOME_ENV) or "workspace").expanduser().resolve()
        return cls(
            root=root,
            mlflow_uri=mlflow_uri or os.environ.get(MLFLOW_ENV) or f"sqlite:///{root / 'mlflow.db'}",
            optuna_storage=optuna_storage or os.environ.get(OPTUNA_ENV) or f"sqlite:///{root / 'optuna.db'}",
        )

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def sources_dir(self) -> Path:
        """Raw downloads (Debian/npm packages unpacked) that data builds read from."""
        return self.root / "sources"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "mlartifacts"

    def dataset_dir(self, name: str) -> Path:
        return self.data_dir / name

    def ensure(self) -> "Workspace":
        for path in (self.root, self.data_dir, self.cache_dir, self.sources_dir, self.artifacts_dir):
            path.mkdir(parents=True, exist_ok=True)
        return self
