"""A search study's report: the best trial, every trial ranked, Optuna's parameter importances and the
optimisation history, read from the trial runs in MLflow (one run per trial and seed).

A trial's score is the mean objective over the seeds it trained at, as the orchestrator told Optuna.
Importances are Optuna's own (``optuna.importance``, fANOVA by default), computed on an in-memory study
rebuilt from the runs with the study file's search space, so the report needs no Optuna storage.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd
from matplotlib.figure import Figure

from workbench.config.study import Study
from workbench.report.formats import html_document, html_list, html_prose, html_table, latex_escape, latex_table
from workbench.report.table import markdown_table
from workbench.tracking.mlflow_store import TAG_PREFIX

TRIAL_TAG, SEED_TAG = f"tags.{TAG_PREFIX}optuna_trial", f"tags.{TAG_PREFIX}seed"
SHOWN = 15
"""Trials the ranked table lists (the CSV has every one)."""


@dataclass
class SearchReport:
    title: str
    objective: str
    maximize: bool
    trials: pd.DataFrame
    """One line per trial, best first: trial, each searched key, mean, std, seeds, per-seed values, run ids."""
    seeds: int
    asked: int
    """Trials the study file asks for."""
    keys: list[str] = field(default_factory=list)
    """The searched recipe keys, in the study file's order."""
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""
    command: str = ""
    plot: str = ""
    provenance: list[str] = field(default_factory=list)
    cost: list[str] = field(default_factory=list)

    @property
    def ranked_heading(self) -> str:
        return f"Trials, best first{f' (the first {SHOWN})' if len(self.trials) > SHOWN else ''}"

    def ranked(self) -> pd.DataFrame:
        """The first ``SHOWN`` trials as printed: trial, each searched value, mean ± std, seeds."""
        shown = self.trials.head(SHOWN)
        return pd.DataFrame({"trial": shown["trial"].astype(int),
                             **{key: shown[key].map(_value) for key in self.keys},
                             self.objective: [f"{m:.4f}" + (f" ± {s:.4f}" if pd.notna(s) else "")
                                              for m, s in zip(shown["mean"], shown["std"])],
                             "seeds": shown["seeds"].astype(int)})

    def importance_table(self) -> pd.DataFrame:
        return pd.DataFrame({"parameter": list(self.importances),
                             "importance": [f"{v:.3f}" for v in self.importances.values()]})

    def best_line(self) -> str:
        best = self.trials.iloc[0]
        point = ", ".join(f"`{key}` = {_value(best[key])}" for key in self.keys)
        per_seed = ", ".join(f"seed {c.removeprefix('value_seed_')}: {best[c]:.4f}"
                             for c in self.trials if c.startswith("value_seed_") and pd.notna(best[c]))
        return (f"Best: trial {int(best['trial'])}, {self.objective} {best['mean']:.4f}"
                + (f" ± {best['std']:.4f}" if pd.notna(best["std"]) else "") + f" ({per_seed}); {point}.")

    def to_latex(self, stem: str) -> str:
        """The ranked trials as a booktabs table, the best trial and the importances in its caption."""
        ranked = self.ranked().map(latex_escape)
        importances = "; ".join(f"`{k}` {v:.2f}" for k, v in self.importances.items())
        caption = (f"{self.title}. {self.ranked_heading}; {self.objective} is the mean ± std over each trial's "
                   f"seeds. {self.best_line()}" + (f" Importances (fANOVA): {importances}." if importances else ""))
        return latex_table(ranked, 1 + len(self.keys), caption, stem,
                           f"% {self.title}\n% Rendered by `{self.command}`; provenance: {stem}.md")

    def to_html(self) -> str:
        parts = [f"<h1>{html.escape(self.title)}</h1>", f"<p><b>{html_prose(self.best_line())}</b></p>",
                 f"<h2>{html.escape(self.ranked_heading)}</h2>", html_table(self.ranked().map(_escape)),
                 "<h2>Parameter importances</h2>"]
        if self.importances:
            parts.append(html_table(self.importance_table().map(_escape)))
        parts.append(f'<p class="note">{html_prose(self.importance_note)}</p>')
        if self.plot:
            parts += ["<h2>Optimisation history</h2>", f'<img src="{html.escape(self.plot)}" alt="history">']
        return html_document(self.title, [*parts, *html_list("Cost", self.cost),
                                          *html_list("Provenance", self.provenance)])

    def to_markdown(self) -> str:
        lines = [f"# {self.title}", "",
                 f"{len(self.trials)} of the {self.asked} trials the file asks for finished (the others were "
                 f"pruned or failed: `workbench study status`); each scores the mean {self.objective} over up "
                 f"to {self.seeds} seed(s) ({'higher' if self.maximize else 'lower'} is better)."
                 + (f" Made by `{self.command}`." if self.command else ""), "",
                 f"**{self.best_line()}** The best of many noisy trials is optimistic (the winner's curse): "
                 "confirm it in a grid study with fresh seeds, and on the eval suite only once chosen.", ""]
        lines += [f"## {self.ranked_heading}", "", markdown_table(self.ranked(), index=False), ""]
        lines += ["## Parameter importances", ""]
        if self.importances:
            lines += [markdown_table(self.importance_table(), index=False), ""]
        lines += [self.importance_note, ""]
        if self.plot:
            lines += ["## Optimisation history", "", f"![{self.title}: optimisation history]({self.plot})", ""]
        if self.cost:
            lines += ["## Cost", "", *(f"- {line}" for line in self.cost), ""]
        if self.provenance:
            lines += ["## Provenance", "", *(f"- {line}" for line in self.provenance), ""]
        return "\n".join(lines)


def _value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def search_report(study: Study, runs: pd.DataFrame, title: str) -> SearchReport:
    """The trials of ``runs`` (finished trial runs of a search study), ranked by their mean objective."""
    metric = f"metrics.eval/{study.objective.metric}"
    if runs.empty or metric not in runs:
        raise LookupError(f"no finished trial runs for study {study.study!r}; run `workbench study run` first")
    dims = searched(study)
    keys = list(dims)
    lines = []
    for number, group in runs.groupby(runs[TRIAL_TAG].astype(int)):
        group = group.sort_values(SEED_TAG, key=lambda s: s.astype(int))
        values = group[metric].astype(float)
        line = {"trial": number, **{key: _searched_value(group.iloc[0], key, index)
                                    for key, (_, index) in dims.items()},
                "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else math.nan,
                "seeds": len(values)}
        line.update({f"value_seed_{s}": v for s, v in zip(group[SEED_TAG], values)})
        line.update({f"run_id_seed_{s}": r for s, r in zip(group[SEED_TAG], group["run_id"])})
        lines.append(line)
    maximize = study.objective.direction == "maximize"
    trials = pd.DataFrame(lines).sort_values("mean", ascending=not maximize, kind="stable").reset_index(drop=True)
    report = SearchReport(title, study.objective.metric, maximize, trials, len(study.seed_list), study.search.trials,
                          keys)
    report.importances, report.importance_note = _importances(study, trials)
    return report


def searched(study: Study) -> dict[str, tuple[object, int | None]]:
    """Optuna's parameter name → (its dimension, its index in a list-valued key, or None)."""
    dims: dict[str, tuple[object, int | None]] = {}
    for key, dim in study.search.space.items():
        if hasattr(dim, "each"):
            dims.update({f"{key}.{i}": (element, i) for i, element in enumerate(dim.each)})
        else:
            dims[key] = (dim, None)
    return dims


def _searched_value(run: pd.Series, name: str, index: int | None) -> object:
    """A searched value as the run logged it: a parameter, or one element of a list-valued one."""
    if index is None:
        return _param(run.get(f"params.{name}"))
    try:
        return json.loads(run.get(f"params.{name.rsplit('.', 1)[0]}"))[index]
    except (TypeError, ValueError, IndexError):
        return math.nan


def _param(text: object) -> object:
    """A run's parameter back as a number where it is one (MLflow stores strings)."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return text
    return int(number) if number.is_integer() and "." not in str(text) and "e" not in str(text).lower() else number


def _importances(study: Study, trials: pd.DataFrame) -> tuple[dict[str, float], str]:
    """Optuna's importances over the trials that trained at every seed (a partial trial's mean is not
    comparable), and the note saying how they were computed."""
    complete = trials[trials["seeds"] == len(study.seed_list)]
    distributions = {key: _distribution(dim) for key, (dim, _) in searched(study).items()}
    if len(complete) < 2 or complete["mean"].nunique() < 2:
        return {}, (f"No importances: they need two or more trials that trained at every seed with "
                    f"different scores ({len(complete)} here).")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per in-memory study
    rebuilt = optuna.create_study(direction=study.objective.direction)
    for _, line in complete.iterrows():
        rebuilt.add_trial(optuna.trial.create_trial(params={k: line[k] for k in distributions},
                                                    distributions=distributions, value=float(line["mean"])))
    importances = optuna.importance.get_param_importances(rebuilt)
    return ({k: float(v) for k, v in importances.items()},
            f"Importances: Optuna's default evaluator (fANOVA) over the {len(complete)} trials that trained at "
            f"every seed, on their mean {study.objective.metric}; they sum to 1 and say how much of the score's "
            "variance across the searched space each parameter explains, not which direction is better.")


def _distribution(dim) -> optuna.distributions.BaseDistribution:
    if hasattr(dim, "float"):
        return optuna.distributions.FloatDistribution(*dim.float, log=dim.log)
    if hasattr(dim, "int"):
        return optuna.distributions.IntDistribution(*dim.int, log=dim.log)
    return optuna.distributions.CategoricalDistribution(dim.choice)


def history_plot(report: SearchReport, path: Path) -> None:
    """Each trial's mean objective (± std over its seeds) in trial order, and the best so far."""
    ordered = report.trials.sort_values("trial")
    best = ordered["mean"].cummax() if report.maximize else ordered["mean"].cummin()
    figure = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = figure.subplots()
    ax.errorbar(ordered["trial"], ordered["mean"], yerr=ordered["std"].fillna(0.0), marker="o", markersize=4,
                linestyle="none", capsize=3, label="trial (mean ± std over seeds)")
    ax.step(ordered["trial"], best, where="post", color="0.3", linewidth=1, label="best so far")
    ax.set_xlabel("Optuna trial")
    ax.set_ylabel(report.objective)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.suptitle(report.title, fontsize=10)
    figure.savefig(path, dpi=110, metadata={"Software": None})


def _escape(value: object) -> str:
    return html.escape(str(value))


def write_search_report(report: SearchReport, out_dir: Path, stem: str) -> list[Path]:
    """The history plot, Markdown, LaTeX, HTML and the numeric CSV of every trial, to ``out_dir/stem.*``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot, md, tex, page, csv = (out_dir / f"{stem}{suffix}" for suffix in (".png", ".md", ".tex", ".html", ".csv"))
    history_plot(report, plot)
    report.plot = plot.name
    md.write_text(report.to_markdown())
    tex.write_text(report.to_latex(stem))
    page.write_text(report.to_html())
    report.trials.to_csv(csv, index=False, float_format="%.10g")
    return [plot, md, tex, page, csv]
