"""How many bytes a reinforced sample costs, against the least its content could take.

Raw minimum per sample: every stored embedding row at 2 bytes a value (the stored 16-bit precision),
every augmentation parameter at 4 bytes (a float32 or int32), and the synthetic captions' UTF-8 bytes.
Nothing else — no keys, no headers, no JSON punctuation. Stored: the shard files' bytes on disk. The
uncompressed member sizes show where the container's overhead sits.
"""

from __future__ import annotations

PARAM_BYTES = 4


def storage_report(entries: list[dict]) -> dict:
    """From shard entries (see stage.reinforce_shard) to per-sample stored and raw-minimum bytes."""
    samples = sum(e["samples"] for e in entries) or 1
    raw = {"embeddings": sum(e["raw"]["embedding_bytes"] for e in entries) / samples,
           "augmentation_params": sum(e["raw"]["param_numbers"] for e in entries) * PARAM_BYTES / samples,
           "captions": sum(e["raw"]["caption_bytes"] for e in entries) / samples}
    raw["total"] = sum(raw.values())
    members = {}
    for entry in entries:
        for name, size in entry["member_bytes"].items():
            members[name] = members.get(name, 0) + size
    labels = {"npz": "embeddings (npz)", "paug.json": "augmentation params (paug.json)",
              "syn.json": "captions (syn.json)", "json": "sample metadata (json)"}
    stored = {"total": sum(e["bytes"] for e in entries) / samples}
    uncompressed = {labels.get(name, name): size / samples for name, size in members.items()}
    return {"samples": samples, "per_sample": stored, "raw_per_sample": raw, "uncompressed_members": uncompressed,
            "ratio_to_raw": stored["total"] / raw["total"] if raw["total"] else float("nan")}


def render_storage(report: dict) -> str:
    raw, members = report["raw_per_sample"], report["uncompressed_members"]
    lines = [f"storage per sample: {report['per_sample']['total']:,.0f} B stored vs {raw['total']:,.0f} B raw minimum "
             f"(ratio {report['ratio_to_raw']:.3f})",
             f"  raw minimum: embeddings {raw['embeddings']:,.0f} B, augmentation params "
             f"{raw['augmentation_params']:,.0f} B, captions {raw['captions']:,.0f} B",
             "  members before compression: " + ", ".join(f"{k} {v:,.0f} B" for k, v in members.items())]
    return "\n".join(lines)
