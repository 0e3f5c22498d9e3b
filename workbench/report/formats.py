"""The files a report is written as: one renderer per format, each from the same ``StudyTable``.

Markdown is what the terminal and the repository show; LaTeX is a booktabs table to paste into a paper;
HTML is one page with the table, its verdicts, its provenance and its plot; CSV holds the numbers. Every
format marks the same cells (``StudyTable.best``, ``on_par``, ``flagged``), so they never disagree.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from workbench.report.plots import axis_plot, curve_plot, latency_plot, storage_plot
from workbench.report.table import CONTRAST_NOTE, StudyTable


@dataclass(frozen=True)
class Format:
    suffix: str
    render: Callable[[StudyTable, str], str]
    """(table, file stem) → the file's text; the stem names sibling files (the HTML page's plot)."""


FORMATS: dict[str, Format] = {}


def register_format(name: str, suffix: str):
    def add(render: Callable[[StudyTable, str], str]) -> Callable[[StudyTable, str], str]:
        if name in FORMATS:
            raise ValueError(f"report format {name!r} is registered twice")
        FORMATS[name] = Format(suffix, render)
        return render
    return add


@register_format("markdown", ".md")
def markdown(table: StudyTable, stem: str) -> str:
    return table.to_markdown()


@register_format("csv", ".csv")
def csv(table: StudyTable, stem: str) -> str:
    return table.cells.to_csv(index=False, float_format="%.10g", lineterminator="\n")


# ---------------------------------------------------------------- LaTeX
_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   "±": r"$\pm$", "–": "--", "—": "---", "−": "$-$", "×": r"$\times$", "†": r"$^\dagger$",
                   "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\rightarrow$", "²": r"$^2$", "√": r"$\surd$"}


def latex_escape(text: object) -> str:
    return "".join(_LATEX_SPECIALS.get(char, char) for char in str(text))


def latex_prose(text: str) -> str:
    """Escaped prose with its `code` spans in typewriter type."""
    parts = text.split("`")
    return "".join(f"\\texttt{{{latex_escape(part)}}}" if i % 2 else latex_escape(part)
                   for i, part in enumerate(parts))


@register_format("latex", ".tex")
def latex(table: StudyTable, stem: str) -> str:
    """A booktabs ``table`` float: row labels left, cells centred, bold best, underlined on par, † near
    chance; the notes in the caption. Needs ``\\usepackage{booktabs}``."""
    cells = table.marked(bold=r"\textbf{{{}}}", par=r"\underline{{{}}}", dagger=r"{}$^\dagger$",
                         text=table.text.map(latex_escape))
    frame = _labelled(cells, escape=latex_escape)
    caption = f"{table.title}. Mean ± std over {table.seeds} seed(s). " + " ".join(table.notes("underlined"))
    return latex_table(frame, len(frame.columns) - len(cells.columns), caption, stem,
                       f"% {table.title}\n% Rendered by `{table.command}`; verdicts and provenance: {stem}.md")


def latex_table(frame: pd.DataFrame, labels: int, caption: str, stem: str, comment: str) -> str:
    """``frame`` (cells already LaTeX) as a booktabs float: its first ``labels`` columns left-aligned."""
    body = [" & ".join(latex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]
    body += [" & ".join(map(str, row)) + r" \\" for row in frame.itertuples(index=False)]
    lines = [comment, r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{latex_prose(caption)}}}",
             f"\\label{{tab:{stem}}}", f"\\begin{{tabular}}{{{'l' * labels}{'c' * (len(frame.columns) - labels)}}}",
             r"\toprule", *body, r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _labelled(cells: pd.DataFrame, escape: Callable[[object], str]) -> pd.DataFrame:
    """``cells`` with its row labels as leading columns (escaped), its column labels as strings."""
    frame = cells.copy()
    frame.columns = [str(c) for c in frame.columns]
    frame = frame.reset_index()
    names = [c for c in frame.columns if c not in {str(c) for c in cells.columns}]
    frame[names] = frame[names].map(escape)
    return frame


# ---------------------------------------------------------------- HTML
HTML_STYLE = """body { font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.8em; text-align: center; }
thead th { border-top: 2px solid #000; border-bottom: 1px solid #000; }
tbody tr:last-child td { border-bottom: 2px solid #000; }
td:first-child, th:first-child { text-align: left; }
p.note, li { color: #333; font-size: 0.92em; }
code { background: #f3f3f3; padding: 0 0.2em; }
img { max-width: 100%; }"""


def html_prose(text: str) -> str:
    """Escaped prose with `code` spans and **bold** as the Markdown writes them."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


@register_format("html", ".html")
def html_page(table: StudyTable, stem: str) -> str:
    """One self-contained page (but for the plot, a sibling PNG): table, notes, verdicts, provenance."""
    cells = table.marked(bold="<b>{}</b>", par="<u>{}</u>", dagger="{} †", text=table.text.map(html.escape))
    parts = [f"<h1>{html.escape(table.title)}</h1>", f"<p>{html_prose(table.summary)}</p>",
             html_table(_labelled(cells, escape=lambda v: html.escape(str(v))))]
    parts += [f'<p class="note">{html_prose(note)}</p>' for note in table.notes("underlined")]
    if table.chance:
        parts.append('<p class="note">Chance: ' + ", ".join(f"{k} {v:.4f}" for k, v in table.chance.items()) + "</p>")
    parts += [f'<img src="{html.escape(plot)}" alt="{html.escape(table.title)}">' for plot in table.plots]
    if table.reference is None:
        parts.append('<p class="note">No reference row (<code>table.reference</code>): no verdicts.</p>')
    else:
        parts.append(f"<h2>Against the reference: {html.escape(table.reference)}</h2>")
        parts.append(html_table(table.verdicts.map(lambda v: html.escape(str(v)))) if not table.verdicts.empty
                     else "<p>No other row has runs to compare with it.</p>")
        parts += [f'<p class="note">{html_prose(note)}</p>' for note in table.verdict_notes]
    if not table.contrasts.empty:
        parts += ["<h2>Contrasts</h2>", html_table(table.contrasts.map(lambda v: html.escape(str(v)))),
                  f'<p class="note">{html_prose(CONTRAST_NOTE)}</p>']
    if table.efficiency_note:
        parts.append(f"<h2>Learning efficiency against {html.escape(table.reference or '')}</h2>")
        if not table.efficiency.empty:
            parts.append(html_table(table.efficiency.map(lambda v: html.escape(str(v)))))
        parts.append(f'<p class="note">{html_prose(table.efficiency_note)}</p>')
    return html_document(table.title, [*parts, *html_list("Cost", table.cost), *html_list("Provenance", table.provenance)])


def html_list(heading: str, lines: list[str]) -> list[str]:
    """A section of prose lines (cost, provenance), or nothing."""
    if not lines:
        return []
    return [f"<h2>{heading}</h2>", "<ul>" + "".join(f"<li>{html_prose(line)}</li>" for line in lines) + "</ul>"]


def html_document(title: str, parts: list[str]) -> str:
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>\n{HTML_STYLE}\n</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_report(table: StudyTable, out_dir: Path, stem: str) -> list[Path]:
    """Write the plots (the metrics by the swept axis, when the table sweeps something; learning curves, when
    runs evaluated during training; by stored bytes, when rows train on reinforced data of different sizes; by
    latency, when the axis is the student and its latencies were measured)
    and every format to ``out_dir/stem*``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, table.plots = [], []
    for plot, draw in ((out_dir / f"{stem}.png", axis_plot), (out_dir / f"{stem}-curves.png", curve_plot),
                       (out_dir / f"{stem}-storage.png", storage_plot),
                       (out_dir / f"{stem}-latency.png", latency_plot)):
        if draw(table, plot):
            table.plots.append(plot.name)
            written.append(plot)
        else:
            plot.unlink(missing_ok=True)
    for form in FORMATS.values():
        path = out_dir / f"{stem}{form.suffix}"
        path.write_text(form.render(table, stem))
        written.append(path)
    contrasts = out_dir / f"{stem}-contrasts.csv"  # numeric, like the cells' CSV
    if table.contrast_numbers.empty:
        contrasts.unlink(missing_ok=True)
    else:
        contrasts.write_text(table.contrast_numbers.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
        written.append(contrasts)
    return written
