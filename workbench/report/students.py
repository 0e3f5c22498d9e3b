"""The students' table (MobileCLIP2 Tab. 8's columns): what ``workbench models --latency`` measured
(``workbench.models.latency``), kept per device in ``reports/students.json`` so each machine adds its
columns, rendered as ``reports/students.md``; and the latencies a study report plots accuracy against."""

from __future__ import annotations

import json
from pathlib import Path

PAPER_TABLE_8 = {  # open_clip name → (the paper's name, image M params, text M params, image ms, text ms)
    "MobileCLIP-S1": ("MobileCLIP-S1", 21.5, 63.4, 2.5, 3.3),
    "MobileCLIP-S2": ("MobileCLIP-S2", 35.7, 63.4, 3.6, 3.3),
    "MobileCLIP-B": ("MobileCLIP-B", 86.3, 63.4, 10.4, 3.3),
    "MobileCLIP2-S0": ("MobileCLIP2-S0", 11.4, 63.4, 1.5, 3.3),
    "MobileCLIP2-S2": ("MobileCLIP2-S2", 35.7, 63.4, 3.6, 3.3),
    "MobileCLIP2-B": ("MobileCLIP2-B", 86.3, 63.4, 10.4, 3.3),
    "MobileCLIP2-S3": ("MobileCLIP2-L", 125.1, 123.6, 8.0, 6.6),
    "MobileCLIP2-S4": ("MobileCLIP2-XL", 321.6, 123.6, 19.6, 6.6),
    "MobileCLIP2-L-14": ("DFN-L/14 (its towers)", 304.3, 123.6, 57.9, 6.6),
}
"""MobileCLIP2 Tab. 8: parameters (M) and iPhone 12 Pro Max latency (ms) of each tower. open_clip's
MobileCLIP2-S3 / S4 carry the MCi3 / MCi4 image towers of the table's MobileCLIP2-L / XL rows, and its
MobileCLIP2-L-14 the ViT-L/14 of the DFN-L/14 row."""

STORE = "students.json"
"""The measurements' file in the reports folder (``workbench models --latency`` writes it beside its table)."""


def fused_latency(store: Path) -> tuple[str, dict[str, float]]:
    """The first device measured in ``store`` and each student's fused image + text latency (ms) on it;
    ("", {}) when nothing was measured."""
    if not store.exists():
        return "", {}
    device, entry = next(iter(json.loads(store.read_text())["devices"].items()), ("", {"students": {}}))
    return device, {name: cost["image_fused"]["median_ms"] + cost["text_fused"]["median_ms"]
                    for name, cost in entry["students"].items()}


def record(store: Path, device: str, costs: list[dict], command: str) -> dict:
    """Merge ``costs`` measured on ``device`` by ``command`` into the JSON ``store`` (other devices stay)."""
    data = json.loads(store.read_text()) if store.exists() else {"devices": {}}
    entry = data["devices"].setdefault(device, {"commands": [], "students": {}})
    entry["students"].update({cost["name"]: cost for cost in costs})
    if command not in entry["commands"]:
        entry["commands"].append(command)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(data, indent=1) + "\n")
    return data


def render(data: dict) -> str:
    """The Markdown table: one row per student, parameters once, latency columns per device."""
    devices = {device: entry["students"] for device, entry in data["devices"].items()}
    names = list(dict.fromkeys(name for students in devices.values() for name in students))
    head = ["student", "res.", "image M", "text M", "Tab. 8 M (img + txt)"]
    for i, _ in enumerate(devices):
        head += [f"image ms [{i + 1}]", f"fused [{i + 1}]", f"text ms [{i + 1}]", f"fused [{i + 1}]"]
    head += ["Tab. 8 ms (img + txt)", "modules fused", "max abs. Δ fused"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        measured = [students[name] for students in devices.values() if name in students]
        first, paper = measured[0], PAPER_TABLE_8.get(name)
        row = [f"`{name}`", str(first["image_size"]), f"{first['image_params'] / 1e6:.1f}",
               f"{first['text_params'] / 1e6:.1f}", f"{paper[1]} + {paper[2]}" if paper else "–"]
        for students in devices.values():
            cost = students.get(name)
            row += ([_ms(cost["image"]), _ms(cost["image_fused"]), _ms(cost["text"]), _ms(cost["text_fused"])]
                    if cost else ["–"] * 4)
        row += [f"{paper[3]} + {paper[4]}" if paper else "–", str(first["fused_modules"]),
                f"{max(c['max_difference'] for c in measured):.1e}"]
        lines.append("| " + " | ".join(row) + " |")
    notes = [f"- [{i + 1}] {device}: " + "; ".join(f"`{c}`" for c in entry["commands"])
             for i, (device, entry) in enumerate(data["devices"].items())]
    return "\n".join([
        "# Students: parameters and latency", "",
        "Batch 1, the image at the model's native resolution, the text at its full 77-token context; each time "
        "is the median of warm repetitions in milliseconds (min–max in brackets), before and after structural "
        "reparameterisation (`timm.utils.reparameterize_model`, as the papers time their models). Weights are "
        "random: latency does not depend on them. 'Modules fused' counts the blocks reparameterisation folds (0: "
        "nothing to fold, as in a plain ViT); the last column is the largest absolute difference fusing made "
        "to either tower's normalised output (BatchNorm statistics randomised first, so a wrong fusion shows). "
        "Tab. 8 is MobileCLIP2's table: parameters in millions, latency on an iPhone 12 Pro Max (not comparable "
        "with these machines'). open_clip's MobileCLIP2-S3 / S4 are compared with the table's MobileCLIP2-L / XL "
        "rows (MCi3 / MCi4 image towers), MobileCLIP2-L-14 with its DFN-L/14 row (ViT-L/14).", "",
        *lines, "", "Devices, and the commands that measured on them:", "", *notes, ""])


def _ms(timing: dict) -> str:
    return f"{timing['median_ms']:.1f} ({timing['min_ms']:.1f}–{timing['max_ms']:.1f})"
