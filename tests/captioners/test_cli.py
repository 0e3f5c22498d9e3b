"""The captioner commands, as a user types them."""

from click.testing import CliRunner

from workbench.cli import main

from .conftest import write_registry


def test_captioner_commands(both_ws, tmp_path):
    registry = str(write_registry(tmp_path / "captioners.yaml", steps=3))
    runner = CliRunner()
    ws = ["--workspace", str(both_ws.root)]

    listing = runner.invoke(main, [*ws, "captioner", "list", "--captioners", registry])
    assert listing.exit_code == 0 and "not fitted" in listing.output and "finetune of shapes" in listing.output

    wrong = runner.invoke(main, [*ws, "captioner", "fit", "shapes-fancy", "--captioners", registry])
    assert wrong.exit_code == 2 and "workbench captioner finetune shapes-fancy" in wrong.output

    tuned = runner.invoke(main, [*ws, "captioner", "finetune", "shapes-fancy", "--captioners", registry])
    assert tuned.exit_code == 0, tuned.output
    assert "shapes-fancy: fitted" in tuned.output and "fine-tune of shapes" in tuned.output

    again = runner.invoke(main, [*ws, "captioner", "fit", "shapes", "--captioners", registry])
    assert "shapes: hit" in again.output

    bad = runner.invoke(main, [*ws, "captioner", "generate", "shapes", "--dataset", "shapes", "--decoding", "greedy",
                               "--captioners", registry])
    assert bad.exit_code == 2 and "top_p, top_k, beam" in bad.output

    made = runner.invoke(main, [*ws, "captioner", "generate", "shapes", "shapes-fancy", "--dataset", "shapes",
                                "-S", "2", "--decoding", "top_k:k=3", "--max-images", "8", "--teacher", "none",
                                "--captioners", registry])
    assert made.exit_code == 0, made.output
    assert "shapes: generated" in made.output and "| ground truth |" in made.output
