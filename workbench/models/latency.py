"""Students' size and speed, as MobileCLIP2 Tab. 8 reports them: parameters of each tower and batch-1
latency of each, timed after structural reparameterisation (the papers time the fused inference graph:
MobileOne / RepMixer branches folded into single convolutions by ``timm.utils.reparameterize_model``).

Latency here is the median of warm repetitions on the machine at hand (batch 1, the image at the model's
native resolution, the text at its full context of 77 tokens), before and after fusing, with the largest
difference the fusion made to either tower's output: a fusion that changed the function is a bug.
``workbench.report.students`` keeps the measurements per device and renders the table.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from workbench.config.recipe import ModelConfig
from workbench.models.students import count_parameters, create_student, get_tokenizer, image_size_of, list_students

PAPER_STUDENTS = ("MobileCLIP-S1", "MobileCLIP-S2", "MobileCLIP-B", "MobileCLIP2-S0", "MobileCLIP2-S2",
                  "MobileCLIP2-B", "MobileCLIP2-S3", "MobileCLIP2-S4", "MobileCLIP2-L-14")
"""The papers' students that open_clip builds (MobileCLIP-S0's custom text tower is not in open_clip)."""


@dataclass
class Timing:
    median_ms: float
    min_ms: float
    max_ms: float


@dataclass
class StudentCost:
    name: str
    image_size: int
    image_params: int
    text_params: int
    image: Timing
    text: Timing
    image_fused: Timing
    text_fused: Timing
    fused_modules: int
    """Submodules the reparameterisation folded (0: nothing to fuse, e.g. a plain ViT)."""
    max_difference: float
    """Largest absolute difference between the fused and unfused towers' normalised outputs."""


def device_name(device: torch.device) -> str:
    """The processor the timings ran on, as a reader would name it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {torch.get_num_threads()} threads"


def time_call(call: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> Timing:
    """Median, min and max wall time of ``call`` over ``repeats`` runs after ``warmup`` untimed ones."""
    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        call()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return Timing(statistics.median(times), min(times), max(times))


def count_fusable(model: torch.nn.Module) -> int:
    """Modules ``reparameterize_model`` acts on (those with a ``reparameterize`` or ``fuse`` method)."""
    return sum(1 for module in model.modules() if hasattr(module, "reparameterize") or hasattr(module, "fuse"))


def measure(name: str, repeats: int = 10, warmup: int = 3, device: torch.device | str = "cpu",
            image_size: int | None = None) -> StudentCost:
    """Build ``name`` (random weights: latency does not depend on them), time each tower at batch 1, fuse
    it, time again and compare outputs. ``image_size`` overrides the native resolution (tests)."""
    device = torch.device(device)
    torch.manual_seed(0)
    model = create_student(ModelConfig(name=name)).eval().to(device)
    _randomise_norm_statistics(model)  # fresh BatchNorms are identities, which would hide a wrong fusion
    size = image_size or image_size_of(model)
    image = torch.randn(1, 3, size, size, device=device)
    text = get_tokenizer(name)(["a photo of a dog"]).to(device)  # padded to the model's context length
    params = count_parameters(model)

    def towers(m: torch.nn.Module) -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]:
        return lambda: m.encode_image(image, normalize=True), lambda: m.encode_text(text, normalize=True)

    from timm.utils.model import reparameterize_model  # timm is heavy; readers of the table do not need it

    with torch.inference_mode():
        encode_image, encode_text = towers(model)
        before = encode_image(), encode_text()
        image_timing = time_call(encode_image, repeats, warmup, device)
        text_timing = time_call(encode_text, repeats, warmup, device)
        fusable = count_fusable(model)
        fused = reparameterize_model(model)
        encode_image, encode_text = towers(fused)
        after = encode_image(), encode_text()
        image_fused = time_call(encode_image, repeats, warmup, device)
        text_fused = time_call(encode_text, repeats, warmup, device)
    difference = max(float((a - b).abs().max()) for a, b in zip(before, after))
    return StudentCost(name, size, params["image"], params["text"], image_timing, text_timing, image_fused,
                       text_fused, fusable, difference)


def _randomise_norm_statistics(model: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)


def default_students() -> list[str]:
    """The micro configs the workbench trains on CPU, then the papers' students."""
    return [*list_students()["micro"], *PAPER_STUDENTS]
