"""Every malformed study file gives one line naming the file and the key, exit status 2, and no work."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main

BAD = sorted((Path(__file__).parent / "bad_studies").glob("*.yaml"))


def expected_fragment(path: Path) -> str:
    first = path.read_bytes().split(b"\n")[0].decode()  # the file itself may be no UTF-8 text (44)
    assert first.startswith("# expect: "), f"{path.name} must open with '# expect: <fragment>'"
    return first.removeprefix("# expect: ")


def test_there_are_at_least_twenty_bad_files():
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_study_is_rejected_with_file_and_key(path: Path, tmp_path: Path):
    result = CliRunner().invoke(main, ["--workspace", str(tmp_path / "ws"), "study", "validate", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert expected_fragment(path) in lines[0]
    assert not (tmp_path / "ws").exists(), "validation must not create anything"


@pytest.mark.parametrize("command", ["run", "plan"])
def test_run_and_plan_refuse_bad_files_before_any_work(command: str, tmp_path: Path):
    result = CliRunner().invoke(main, ["--workspace", str(tmp_path / "ws"), "study", command, str(BAD[1])])
    assert result.exit_code == 2
    assert not (tmp_path / "ws").exists()
