"""Students' parameters and latency (MobileCLIP2 Tab. 8's columns): fusion keeps the function, the
parameter counts are the paper's, and the command writes the table."""

import json

import pytest
import torch
from click.testing import CliRunner

from workbench.cli import main
from workbench.models.latency import device_name, measure
from workbench.report.students import PAPER_TABLE_8


def test_reparameterising_a_mobileclip2_student_folds_branches_and_keeps_its_outputs():
    cost = measure("MobileCLIP2-S0", repeats=1, warmup=0, image_size=64)  # small image: the function, not the time
    assert cost.fused_modules > 0  # MobileOne / RepMixer branches were there to fold
    assert cost.max_difference < 1e-4
    _, image_m, text_m, _, _ = PAPER_TABLE_8["MobileCLIP2-S0"]
    assert (round(cost.image_params / 1e6, 1), round(cost.text_params / 1e6, 1)) == (image_m, text_m)


def test_a_plain_vit_has_nothing_to_fold():
    cost = measure("micro-vit-xs", repeats=2, warmup=1)
    assert cost.fused_modules == 0 and cost.max_difference == 0.0
    assert cost.image.min_ms <= cost.image.median_ms <= cost.image.max_ms


def test_the_command_writes_the_table_and_refuses_an_unknown_student(tmp_path):
    out = tmp_path / "students.md"
    command = ["--workspace", str(tmp_path), "models", "--latency", "--out", str(out), "--name", "micro-vit-xs"]
    bad = CliRunner().invoke(main, [*command, "--name", "MobileCLIP9"])
    assert bad.exit_code == 2 and "MobileCLIP9" in bad.output and not out.exists()  # nothing timed first
    good = CliRunner().invoke(main, [*command, "--repeats", "1", "--warmup", "0"])
    assert good.exit_code == 0, good.output
    assert "| `micro-vit-xs` | 32 |" in out.read_text()
    assert "micro-vit-xs" in json.loads(out.with_suffix(".json").read_text())["devices"].popitem()[1]["students"]


@pytest.mark.gpu
def test_cuda_timings_wait_for_the_device():
    cost = measure("MobileCLIP2-S0", repeats=5, warmup=2, device="cuda")
    assert cost.max_difference < 1e-3 and 0 < cost.image_fused.min_ms <= cost.image_fused.median_ms
    assert device_name(torch.device("cuda")) == torch.cuda.get_device_name(0)
