"""Pretrained weights named by a hub tag or a local file, as teachers and captioners both accept them.

No hub is reachable on many machines this runs on: callers fail a tag that cannot be fetched with a
message that says how to pass the same weights as a local file instead.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt")


def checkpoint_path(pretrained: str) -> Path | None:
    """The local checkpoint ``pretrained`` names, or None when it is a hub tag."""
    path = Path(pretrained).expanduser()
    if "/" in pretrained or path.suffix in CHECKPOINT_SUFFIXES or path.exists():
        return path
    return None


def checkpoint_identity(pretrained: str) -> dict:
    """What a stage key hashes for the weights: the tag, or the file's path, size and modification time."""
    path = checkpoint_path(pretrained)
    if path is None or not path.is_file():
        return {"pretrained": pretrained}
    stat = path.stat()
    return {"pretrained": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
