"""Released reinforced shards (``data.reinforced``): which files a recipe names, and the key a student
trained on them gets. No torch here: ``study validate`` checks the shards exist."""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path

from workbench.config.recipe import ReleasedData


def released_shards(config: ReleasedData) -> list[Path]:
    """Every file ``config.shards`` names or matches, sorted; a pattern that matches nothing is an error."""
    found: list[Path] = []
    for pattern in config.shards:
        matches = sorted(Path(m) for m in glob.glob(str(Path(pattern).expanduser())) if Path(m).is_file())
        if not matches:
            raise FileNotFoundError(f"data.reinforced.shards: {pattern!r} matches no file")
        found += matches
    return sorted(dict.fromkeys(p.resolve() for p in found))


def released_key(config: ReleasedData, shards: list[Path] | None = None) -> str:
    """What a student trained on released shards is keyed by: their layout, teachers and policy, and each
    shard's path, size and modification time (hashing terabytes of shards would take hours). ``shards``:
    ``released_shards(config)`` where the caller has them already."""
    shards = [{"path": str(p), "bytes": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
              for p in (shards if shards is not None else released_shards(config))]
    identity = json.dumps({"config": config.model_dump(mode="json", exclude={"shards"}), "shards": shards},
                          sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:16]
