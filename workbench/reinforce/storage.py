"""How many bytes a reinforced sample costs, against a compact baseline encoding of the same content.

Stored: the shard files' bytes on disk (the DataCompDR layout: gzip'd tar of JSON and npz members).
Baseline, per shard — what a careful hand-made format would take, nothing the reader needs left out:

- embeddings: every stored row at 2 bytes a value (the stored 16-bit precision; such floats barely
  compress, so no codec is credited);
- augmentation parameters bit-packed at their stored precision (``param_bits``): crop boxes as integers
  of the source frame, a flip as one bit, a RandAugment op as its index in the op list plus a sign bit
  for signed ops (the magnitude is the policy's for that op), tone and erasing values at ``ROUND``
  decimals over their ranges, and one presence bit for each stage drawn with probability below 1;
- synthetic captions: UTF-8, each ended by a newline and each sample's list by one more, compressed by
  the best of gzip, bz2 and xz at their highest settings (``compressed_captions``).

No keys, uids or headers: a baseline shard holds its input shard's samples in order. Where the stored
bytes exceed the baseline, the report says so.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math

from workbench.augment.ops import OP_NAMES, SIGNED
from workbench.augment.policy import ROUND, AugmentPolicy

TONE_RANGES = ((-0.5, 0.5), (0.25, 1.75))
"""Brightness offset and contrast factor bounds (policy._sample_tone clamps to them)."""


def bits_for(values: int) -> int:
    """Bits of a fixed-width field that takes ``values`` distinct values."""
    return math.ceil(math.log2(values)) if values > 1 else 0


def decimal_bits(low: float, high: float) -> int:
    """Bits of a value in [low, high] stored at ``ROUND`` decimals."""
    return bits_for(round((high - low) * 10**ROUND) + 1)


def _presence_bit(probability: float) -> int:
    return 1 if probability < 1 else 0


def param_bits(rows: list[list], policy: AugmentPolicy, source_size: int) -> int:
    """Bits of the augmentations ``rows`` (``policy.compress`` layout) packed field by field.

    ``source_size`` is the side of the frame the crop boxes are in (the reinforcement's source size).
    """
    side = bits_for(source_size)  # top, left in [0, S − 1]; height, width in [1, S]
    op_bits = bits_for(len(OP_NAMES))
    present = {"random_horizontal_flip": 0, "rand_augment": _presence_bit(policy.randaugment_p),
               "range_augment": _presence_bit(policy.tone_p), "random_erase": _presence_bit(policy.erase_p)}
    total = 0
    for row in rows:
        if len(row) != len(policy.stages):
            raise ValueError(f"augmentation parameters {row!r} do not match the stages {policy.stages}")
        for stage, value in zip(policy.stages, row):
            total += present.get(stage, 0)
            if value is None:
                continue
            if stage == "random_resized_crop":
                total += 4 * side
            elif stage == "random_horizontal_flip":
                total += 1
            elif stage == "rand_augment":
                total += sum(op_bits + (OP_NAMES[int(op)] in SIGNED) for op, _ in value)
            elif stage == "range_augment":
                total += sum(decimal_bits(*bounds) for bounds in TONE_RANGES)
            elif stage == "random_erase":
                total += 4 * decimal_bits(0.0, 1.0)
    return total


def caption_text(captions: list[list[str]]) -> bytes:
    """One sample's list per entry, each caption ended by a newline and each list by one more."""
    return "".join("".join(f"{c}\n" for c in caps) + "\n" for caps in captions).encode("utf-8")


CODECS = {"gzip": lambda data: gzip.compress(data, compresslevel=9, mtime=0),
          "bz2": lambda data: bz2.compress(data, compresslevel=9),
          "xz": lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)}


def compressed_captions(captions: list[list[str]]) -> tuple[int, str, int]:
    """(bytes, codec, uncompressed bytes) of the captions under the best standard compressor."""
    text = caption_text(captions)
    if not any(captions):
        return 0, "none", 0
    size, codec = min((len(compress(text)), name) for name, compress in CODECS.items())
    return size, codec, len(text)


def shard_baseline(param_rows: list[list[list]], policy: AugmentPolicy, source_size: int,
                   captions: list[list[str]], embedding_values: int) -> dict:
    """The baseline of one shard. ``param_rows``: each sample's K compressed augmentations; ``captions``:
    one list per sample and captioner; ``embedding_values``: stored embedding values of all samples."""
    caption_bytes, codec, text_bytes = compressed_captions(captions)
    bits = sum(param_bits(rows, policy, source_size) for rows in param_rows)
    return {"embedding_bytes": 2 * embedding_values, "param_bits": bits, "param_bytes": math.ceil(bits / 8),
            "caption_bytes": caption_bytes, "caption_codec": codec, "caption_text_bytes": text_bytes}


def storage_report(entries: list[dict]) -> dict:
    """From shard entries (see stage.reinforce_shard) to per-sample stored and baseline bytes."""
    samples = sum(e["samples"] for e in entries) or 1
    parts = [e["baseline"] for e in entries]
    baseline = {"embeddings": sum(p["embedding_bytes"] for p in parts) / samples,
                "augmentation_params": sum(p["param_bytes"] for p in parts) / samples,
                "captions": sum(p["caption_bytes"] for p in parts) / samples}
    baseline["total"] = sum(baseline.values())
    codecs = sorted({p["caption_codec"] for p in parts} - {"none"})
    members: dict[str, int] = {}
    for entry in entries:
        for name, size in entry["member_bytes"].items():
            members[name] = members.get(name, 0) + size
    labels = {"npz": "embeddings (npz)", "paug.json": "augmentation params (paug.json)",
              "syn.json": "captions (syn.json)", "json": "sample metadata (json)"}
    stored = {"total": sum(e["bytes"] for e in entries) / samples}
    uncompressed = {labels.get(name, name): size / samples for name, size in members.items()}
    return {"samples": samples, "per_sample": stored, "baseline_per_sample": baseline,
            "caption_codecs": codecs, "caption_text_per_sample": sum(p["caption_text_bytes"] for p in parts) / samples,
            "uncompressed_members": uncompressed,
            "ratio_to_baseline": stored["total"] / baseline["total"] if baseline["total"] else float("nan")}


def render_storage(report: dict) -> str:
    base, members, ratio = report["baseline_per_sample"], report["uncompressed_members"], report["ratio_to_baseline"]
    verdict = (f"stored is {ratio - 1:.1%} above the baseline" if ratio > 1 else
               f"stored is {1 - ratio:.1%} below the baseline" if ratio < 1 else "stored equals the baseline")
    codecs = "/".join(report["caption_codecs"]) or "none"
    lines = [f"storage per sample: {report['per_sample']['total']:,.0f} B stored vs {base['total']:,.0f} B baseline "
             f"(ratio {ratio:.3f}: {verdict})",
             f"  baseline: embeddings {base['embeddings']:,.0f} B (2 B a value), augmentation params "
             f"{base['augmentation_params']:,.1f} B (bit-packed), captions {base['captions']:,.0f} B "
             f"({codecs} of {report['caption_text_per_sample']:,.0f} B of text)",
             "  members before compression: " + ", ".join(f"{k} {v:,.0f} B" for k, v in members.items())]
    return "\n".join(lines)
