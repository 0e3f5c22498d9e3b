"""Every report format renders the same table with the same marks; LaTeX parses (and compiles where a
LaTeX engine is installed), HTML is well formed, the plot is a real PNG."""

import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest
from PIL import Image
from pylatexenc.latexwalker import LatexWalker

from workbench.config.study import Study
from workbench.report.formats import FORMATS, latex_escape, write_report
from workbench.report.plots import axis_plot
from workbench.report.table import build_table

STUDY = Study.model_validate({
    "study": "fmt", "seeds": 2,
    "axes": {"method": {"key": "distill.lam", "values": [0.0, 1.0], "labels": ["plain & co", "kd_1"]},
             "scale": {"key": "distill.teacher_logit_scale", "values": [10, 50, 100]}},
    "table": {"rows": ["method"], "columns": "scale", "metrics": ["avg"], "reference": "plain & co",
              "best": "row"}})


def runs() -> pd.DataFrame:
    means = {("plain & co", "10"): 0.10, ("plain & co", "50"): 0.11, ("plain & co", "100"): 0.12,
             ("kd_1", "10"): 0.20, ("kd_1", "50"): 0.30, ("kd_1", "100"): 0.25}
    return pd.DataFrame([{"tags.workbench.axis.method": method, "tags.workbench.axis.scale": scale,
                          "tags.workbench.seed": str(seed), "tags.workbench.point_id": f"{method}{scale}{seed}",
                          "run_id": f"r{method}{scale}{seed}", "start_time": 0,
                          "metrics.eval/avg": mean + (0.02 if seed else -0.02),
                          "metrics.chance/avg": 0.05, "metrics.stderr/avg": 0.01}
                         for (method, scale), mean in means.items() for seed in (0, 1)])


@pytest.fixture(scope="module")
def table():
    return build_table(STUDY, runs(), "A table & its title")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_renders_every_cell(name, table):
    text = FORMATS[name].render(table, "fmt")
    for value in ("0.3", "0.12", "0.25"):  # 0.3000 in the tables, 0.3 in the CSV
        assert value in text, (name, value)


def test_every_format_marks_the_same_best_cell(table):
    assert "**0.3000 ± 0.0283**" in FORMATS["markdown"].render(table, "fmt")
    assert r"\textbf{0.3000 $\pm$ 0.0283}" in FORMATS["latex"].render(table, "fmt")
    assert "<b>0.3000 ± 0.0283</b>" in FORMATS["html"].render(table, "fmt")
    markdown = FORMATS["markdown"].render(table, "fmt")
    assert "| 0.2500 ± 0.0283 |" in markdown  # 0.05 below 0.30, more than its std
    assert "_0.1000 ± 0.0283_" in markdown and r"\underline{0.1000 $\pm$ 0.0283}" in FORMATS["latex"].render(table, "fmt")


def test_latex_is_a_booktabs_table_that_parses(table, tmp_path):
    tex = FORMATS["latex"].render(table, "fmt")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"plain \& co" in tex and r"kd\_1" in tex and "A table \\& its title" in tex
    LatexWalker(tex, tolerant_parsing=False).get_latex_nodes()  # raises on unbalanced braces or environments
    if shutil.which("pdflatex") is None:
        return
    (tmp_path / "fmt.tex").write_text(tex)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\n"
                                      "\\begin{document}\\input{fmt.tex}\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0


def test_latex_escapes_what_latex_would_read_as_commands():
    assert latex_escape("a_b & 50% #1 {x} ~ ^") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{}"


def test_html_is_well_formed(table):
    class Balance(HTMLParser):
        VOID = {"meta", "img", "br"}

        def __init__(self):
            super().__init__()
            self.open = []

        def handle_starttag(self, tag, attrs):
            if tag not in self.VOID:
                self.open.append(tag)

        def handle_endtag(self, tag):
            assert self.open and self.open.pop() == tag, tag

    parser = Balance()
    parser.feed(FORMATS["html"].render(table, "fmt"))
    assert parser.open == []


def test_write_report_writes_every_format_and_the_plot(table, tmp_path):
    written = write_report(table, tmp_path, "fmt")
    assert sorted(p.suffix for p in written) == sorted([".png", *(f.suffix for f in FORMATS.values())])
    with Image.open(tmp_path / "fmt.png") as image:
        assert image.format == "PNG" and image.width > 300
    assert "![A table & its title](fmt.png)" in (tmp_path / "fmt.md").read_text()
    assert '<img src="fmt.png"' in (tmp_path / "fmt.html").read_text()


def test_a_table_that_sweeps_nothing_has_no_plot(tmp_path):
    one = STUDY.model_copy(update={"table": STUDY.table.model_copy(
        update={"rows": [], "columns": None, "reference": None})})
    frame = runs()
    assert not axis_plot(build_table(one, frame, "t"), tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()


def test_rows_trained_on_data_of_different_sizes_get_a_storage_plot(tmp_path):
    frame = runs().assign(**{"metrics.cost/reinforced_bytes": lambda f: f["tags.workbench.axis.scale"].astype(float)
                             * 2**20})
    table = build_table(STUDY, frame, "K against bytes")
    written = write_report(table, tmp_path, "k")
    assert tmp_path / "k-storage.png" in written and "![K against bytes](k-storage.png)" in (tmp_path / "k.md").read_text()
    assert set(pd.read_csv(tmp_path / "k.csv")["reinforced_bytes"]) == {10 * 2**20, 50 * 2**20, 100 * 2**20}
    with Image.open(tmp_path / "k-storage.png") as image:
        assert image.format == "PNG"
    assert not (tmp_path / "fmt-storage.png").exists()
    write_report(build_table(STUDY, runs(), "t"), tmp_path, "same")  # no bytes recorded: no storage plot
    assert not (tmp_path / "same-storage.png").exists()


def test_sizes_that_differ_only_with_the_base_dataset_get_no_storage_plot(tmp_path):
    by_data = Study.model_validate({**STUDY.model_dump(), "axes": {
        "method": STUDY.axes["method"].model_dump(exclude_none=True),
        "scale": {"key": "data.train", "values": [["a"], ["b"], ["c"]], "labels": ["10", "50", "100"]}}})
    frame = runs().assign(**{"metrics.cost/reinforced_bytes": lambda f: f["tags.workbench.axis.scale"].astype(float)
                             * 2**20})
    write_report(build_table(by_data, frame, "t"), tmp_path, "data")
    assert (tmp_path / "data.png").exists() and not (tmp_path / "data-storage.png").exists()


def test_runs_that_evaluated_during_training_get_learning_curves(table, tmp_path):
    curves = pd.DataFrame([{"run_id": f"r{m}{s}{seed}", "step": step, "value": 0.1 + step / 1e4, "method": m,
                            "scale": s} for m in ("plain & co", "kd_1") for s in ("10", "50", "100")
                           for seed in (0, 1) for step in (500, 1000)])
    table.curves = curves
    written = write_report(table, tmp_path, "c")
    assert tmp_path / "c-curves.png" in written
    assert "![A table & its title](c-curves.png)" in (tmp_path / "c.md").read_text()
    table.curves = curves[curves["step"] == 1000]  # one eval a run: no curve to draw
    assert tmp_path / "d-curves.png" not in write_report(table, tmp_path, "d")
    table.curves = pd.DataFrame()
