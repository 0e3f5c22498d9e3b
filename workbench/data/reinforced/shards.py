"""Reinforced shards: the DataCompDR sample layout, written atomically, read by one reader.

Each sample of a shard (a webdataset tar, gzipped by default) holds

    json        {"uid", "dataset"}                      — joins the sample to its image by uid
    paug.json   {"param_aug": [K compressed augmentations]}  (workbench/augment/policy.py::compress)
    syn.json    {"syn_text_<captioner>": [S captions], ...}
    npz         image_emb [K, ΣD]; text_emb [1, ΣD] (ground truth); syn_text_<captioner>_emb [S, ΣD]

Teachers are concatenated along the feature axis, each block L2-normalised; the dataset manifest
records the blocks. fp16 arrays are numpy's own; bf16 arrays are stored as their uint16 bit patterns
(numpy has no bf16) and the manifest says so.

The reader also takes the released DataCompDR / DFNDR shards: ``syn.json`` keyed ``syn_text`` (legacy:
``text_emb`` rows 1.. are the synthetic captions' embeddings) or ``syn_text<suffix>`` with their own
``<key>_emb`` arrays, plus the ``url.txt`` / ``txt`` / ``jpg`` members of the joined image shards.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import webdataset as wds

SYN_PREFIX = "syn_text"


class CorruptShardError(RuntimeError):
    """An input or reinforced shard that cannot be read to its end; the message names it."""


@dataclass
class ReinforcedSample:
    uid: str
    param_aug: list
    """K compressed augmentations, in the layout of the policy's stages."""
    syn_text: dict[str, list[str]]
    image_emb: np.ndarray
    """[K, ΣD] float32."""
    text_emb: np.ndarray
    """[G, ΣD] float32: ground-truth caption(s)."""
    syn_emb: dict[str, np.ndarray]
    """syn.json key → [S, ΣD] float32."""
    meta: dict = field(default_factory=dict)
    """The sample's json, plus ``txt`` / ``url`` / ``image`` bytes where the shard carries them."""


def syn_key(captioner: str) -> str:
    return f"{SYN_PREFIX}_{captioner}"


def to_stored(embeddings: torch.Tensor, dtype: str) -> np.ndarray:
    if dtype == "fp16":
        return embeddings.to(torch.float16).numpy()
    if dtype == "bf16":
        return embeddings.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    raise ValueError(f"unknown embedding dtype {dtype!r} (fp16 or bf16)")


def from_stored(array: np.ndarray, dtype: str | None) -> np.ndarray:
    """float32 from a stored array; ``dtype`` 'bf16' reads uint16 bit patterns."""
    if dtype == "bf16" or (dtype is None and array.dtype == np.uint16):
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    return array.astype(np.float32)


def encode_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez``'s format (a zip of ``.npy`` members, uncompressed: the shard as a whole is gzipped),
    with a fixed timestamp in place of the clock, so equal arrays always give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buffer.getvalue()


@dataclass
class ShardStats:
    """What one written shard holds, for its manifest entry and the storage report."""

    samples: int = 0
    member_bytes: dict[str, int] = field(default_factory=lambda: {"npz": 0, "paug.json": 0, "syn.json": 0,
                                                                   "json": 0})


def write_shard(path: Path, samples: list[dict], compress: bool) -> dict:
    """Write ``samples`` (dicts of member name → bytes/obj, with ``__key__``) to ``path`` atomically.

    The shard is written under a temporary name, flushed to disk and renamed: a reader (or a resumed
    run) sees a whole shard or none. gzip, tar and zip headers carry no timestamps or names, so the same samples
    always give the same bytes (so does the npz). Returns the manifest entry: name, samples, bytes, sha256, member bytes.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    stats = ShardStats()
    with open(tmp, "wb") as raw:
        stream = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6) if compress else raw
        writer = wds.TarWriter(stream, mtime=0.0)
        for sample in samples:
            encoded = {k: (v if isinstance(v, bytes) else json.dumps(v, separators=(",", ":")).encode())
                       for k, v in sample.items() if k != "__key__"}
            for name, data in encoded.items():
                stats.member_bytes[name] = stats.member_bytes.get(name, 0) + len(data)
            writer.write({"__key__": sample["__key__"], **encoded})
            stats.samples += 1
        writer.close()
        if compress:
            stream.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    return {"name": path.name, "samples": stats.samples, "bytes": path.stat().st_size, "sha256": file_sha256(path),
            "member_bytes": stats.member_bytes}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def iter_tar_samples(path: Path) -> Iterator[dict[str, bytes]]:
    """Members of a (possibly gzipped) webdataset tar grouped by sample key, in stored order.

    Anything that stops the tar from being read to its end — truncation, a bad gzip stream, a bad
    header — raises CorruptShardError naming the file.
    """
    path = Path(path)
    current: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = Path(member.name).name
                key, _, extension = name.partition(".")
                if current and current["__key__"] != key:
                    yield current
                    current = {}
                current["__key__"] = key
                current[extension] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile, ValueError) as error:
        raise CorruptShardError(f"{path}: unreadable ({type(error).__name__}: {error})") from None
    if current:
        yield current


def _parse(raw: dict[str, bytes], dtype: str | None, path: Path) -> ReinforcedSample:
    try:
        meta = json.loads(raw["json"]) if "json" in raw else {}
        paug = json.loads(raw["paug.json"])["param_aug"]
        syn = json.loads(raw["syn.json"]) if "syn.json" in raw else {}
        arrays_raw = raw.get("npz")
        arrays = dict(np.load(io.BytesIO(arrays_raw), allow_pickle=False)) if arrays_raw is not None else {}
    except (KeyError, ValueError, OSError) as error:
        raise CorruptShardError(f"{path}: sample {raw.get('__key__')!r} is malformed ({error})") from None
    uid = str(meta.get("uid", raw["__key__"]))
    for name, extension in (("txt", "txt"), ("url", "url.txt")):
        if extension in raw:
            meta[name] = raw[extension].decode("utf-8")
    for extension in ("jpg", "png", "jpeg", "webp"):
        if extension in raw:
            meta["image"] = raw[extension]
    image_emb = from_stored(arrays["image_emb"], dtype) if "image_emb" in arrays else np.zeros((len(paug), 0), np.float32)
    text_all = from_stored(arrays["text_emb"], dtype) if "text_emb" in arrays else np.zeros((0, 0), np.float32)
    syn_text = {k: v for k, v in syn.items() if k.startswith(SYN_PREFIX)}
    syn_emb, ground_truth = {}, len(text_all)
    for key, captions in syn_text.items():
        if f"{key}_emb" in arrays:
            syn_emb[key] = from_stored(arrays[f"{key}_emb"], dtype)
        elif len(syn_text) == 1 and len(text_all) >= 1 + len(captions):  # legacy: one text_emb for all
            ground_truth = len(text_all) - len(captions)
            syn_emb[key] = text_all[ground_truth:]
    return ReinforcedSample(uid, paug, syn_text, image_emb, text_all[:ground_truth], syn_emb, meta)


def read_shard(path: Path, dtype: str | None = None) -> Iterator[ReinforcedSample]:
    """Samples of one reinforced shard (ours or a released DataCompDR/DFNDR one)."""
    for raw in iter_tar_samples(path):
        if "paug.json" not in raw:
            continue  # an image-only sample of a joined shard without reinforcement
        yield _parse(raw, dtype, Path(path))
