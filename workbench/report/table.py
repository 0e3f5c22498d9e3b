"""A study's table as the paper would print it (mean ± std over seeds, from the runs in MLflow), the
verdict of each row against the study's control row, and the numbers behind both as a numeric CSV."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from workbench.config.study import ROW_SEPARATOR, Study
from workbench.evaluate.spec import NEAR_CHANCE_Z
from workbench.report.cost import CPU, SAMPLES, WALL
from workbench.report.stats import HEADLINE_SEEDS, METHOD_NOTE, Comparison, compare
from workbench.report.transfer import TRANSFER, common_transfer
from workbench.tracking.mlflow_store import TAG_PREFIX

CONTRAST_NOTE = ("Contrasts (`table.contrasts`): row − against, with the interval and verdict of the reference "
                 "comparisons above. Two rows trained on the same seeds are still treated as independent samples "
                 "(no pairing by seed), which, if anything, widens the interval.")

AXIS_TAG = f"tags.{TAG_PREFIX}axis."
COST_COLUMNS = (SAMPLES, WALL, CPU)
STORED = "metrics.cost/reinforced_bytes"
PAR = "{on-par style}"
"""Stands in a note for how a format shows on-par cells (italic in Markdown, underlined elsewhere)."""
SEED_TAG = f"tags.{TAG_PREFIX}seed"


@dataclass
class StudyTable:
    title: str
    text: pd.DataFrame        # "mean ± std" of each cell, unmarked ("–": no runs)
    means: pd.DataFrame       # numeric means, same shape
    stds: pd.DataFrame        # seed standard deviations, same shape (NaN under two runs)
    chance: dict[str, float]  # chance level of each metric shown
    runs: int
    seeds: int
    best: pd.DataFrame = field(default_factory=pd.DataFrame)
    """True where a cell is the best of those it competes with (``table.best``): printed bold."""
    on_par: pd.DataFrame = field(default_factory=pd.DataFrame)
    """True where a cell is within the best cell's std of it (the papers' "on par"): underlined."""
    flagged: pd.DataFrame = field(default_factory=pd.DataFrame)
    """True where some seed of a cell is near chance: marked †."""
    command: str = ""
    """The command that renders this table again."""
    plots: list[str] = field(default_factory=list)
    """File names of the table's plots, beside the table's files (metric by axis; by storage)."""
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The first metric's history during training: run_id, step (samples seen), value and each run's row
    (and column) labels; empty when not read."""
    row_axes: list[str] = field(default_factory=list)
    column_axis: str | None = None
    metrics: list[str] = field(default_factory=list)
    best_note: str = ""
    """Says which cells are bold and which underlined (italic in Markdown), when some are."""
    near_chance_note: str = ""
    """Says what a † marks, when some cell has one."""
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Numeric, one line per cell and metric: runs (n), seeds, mean, std, item_se, the verdict against the
    reference (diff, ci_low, ci_high, df, verdict) and each seed's value and run id. Written as the CSV."""
    reference: str | None = None
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The verdict table under the Markdown table (empty without a reference)."""
    verdict_notes: list[str] = field(default_factory=list)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    """``table.contrasts`` as printed: each named pair of rows, difference, interval, verdict."""
    contrast_numbers: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The same, numeric (written as ``<study>-contrasts.csv``)."""
    provenance: list[str] = field(default_factory=list)
    """Lines saying what made the runs: commit, command, data fingerprints, threads."""
    efficiency: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The learning-efficiency lines (``report.efficiency``), when the table names a budget axis."""
    efficiency_note: str = ""
    cost: list[str] = field(default_factory=list)
    """Lines of the cost ledger (``report.cost``): samples, wall and CPU seconds, upstream stages shared out."""
    pooled: list[str] = field(default_factory=list)
    """Axes neither rows nor columns: each cell pools their values with its seeds."""
    metric_notes: list[str] = field(default_factory=list)
    """What a derived column (``transfer``) averages."""
    data_axes: list[str] = field(default_factory=list)
    """Row or column axes that change the training data (``data.train``): cells that differ in them store
    different datasets, so their stored bytes are not a storage ablation."""
    latency_device: str = ""
    """Where the students' latencies in ``cells["latency_ms"]`` were measured (``workbench models --latency``)."""

    @property
    def table(self) -> pd.DataFrame:
        """The cells as Markdown prints them: bold best, italic on par, † near chance."""
        return self.marked(bold="**{}**", par="_{}_", dagger="{} †")

    def marked(self, bold: str, par: str, dagger: str, text: pd.DataFrame | None = None) -> pd.DataFrame:
        """``text`` (default: the plain cells) with each mark's format applied where it holds."""
        cells = (self.text if text is None else text).copy()
        for mask, form in ((self.best, bold), (self.on_par, par), (self.flagged, dagger)):
            if not mask.empty:
                cells = cells.where(~mask.reindex_like(cells).fillna(False).astype(bool), cells.map(form.format))
        return cells

    def notes(self, par: str = "italic") -> list[str]:
        """The notes under the table (bold, †, derived columns), the on-par cells' style named as ``par``."""
        return [note.replace(PAR, par) for note in (self.best_note, self.near_chance_note, *self.metric_notes)
                if note]

    @property
    def summary(self) -> str:
        """The sentence under the title: how many runs, what a cell averages, the command."""
        return (f"{self.runs} runs; cells are mean ± std over {self.seeds} seed(s)"
                + "".join(f" × every {axis}" for axis in self.pooled) + "."
                + (f" Made by `{self.command}`." if self.command else ""))

    def to_markdown(self) -> str:
        lines = [f"# {self.title}", "", self.summary, ""]
        lines.append(markdown_table(self.table))
        if self.notes():
            lines += ["", " ".join(self.notes())]
        if self.chance:
            lines += ["", "Chance: " + ", ".join(f"{k} {v:.4f}" for k, v in self.chance.items())]
        for plot in self.plots:
            lines += ["", f"![{self.title}]({plot})"]
        if self.reference is None:
            lines += ["", "No reference row (`table.reference`): no verdicts; the gaps above are untested."]
        else:
            lines += ["", f"## Against the reference: {self.reference}", "",
                      markdown_table(self.verdicts, index=False) if not self.verdicts.empty
                      else "No other row has runs to compare with it."]
            for note in self.verdict_notes:
                lines += ["", note]
        if not self.contrasts.empty:
            lines += ["", "## Contrasts", "", markdown_table(self.contrasts, index=False), "", CONTRAST_NOTE]
        if self.efficiency_note:
            lines += ["", f"## Learning efficiency against {self.reference}", ""]
            lines += [markdown_table(self.efficiency, index=False), ""] if not self.efficiency.empty else []
            lines.append(self.efficiency_note)
        if self.cost:
            lines += ["", "## Cost", "", *(f"- {line}" for line in self.cost)]
        if self.provenance:
            lines += ["", "## Provenance", "", *(f"- {line}" for line in self.provenance)]
        return "\n".join(lines) + "\n"


def markdown_table(frame: pd.DataFrame, index: bool = True) -> str:
    frame = frame.reset_index() if index else frame
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def latest_per_point(runs: pd.DataFrame) -> pd.DataFrame:
    """One run per grid point: a point re-run after a cache wipe keeps only its newest run."""
    if runs.empty:
        return runs
    key = f"tags.{TAG_PREFIX}point_id"
    return runs.sort_values("start_time").groupby(key, as_index=False).tail(1)


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def build_table(study: Study, runs: pd.DataFrame, title: str) -> StudyTable:
    if runs.empty:
        raise LookupError(f"no finished trial runs for study {study.study!r}; run `workbench study run` first")
    runs = latest_per_point(runs)
    spec = study.table
    metrics = spec.metrics  # with columns, the first fills the cells; every one gets numbers and verdicts
    metric_notes = []
    if TRANSFER in metrics:  # the same tasks for every row, not each run's own unseen set
        runs, note = common_transfer(runs)
        metric_notes.append(note)
    for metric in metrics:
        if f"metrics.eval/{metric}" not in runs:
            known = sorted(c.removeprefix("metrics.eval/") for c in runs if c.startswith("metrics.eval/"))
            raise LookupError(f"table metric {metric!r} is not in the runs; known: {', '.join(known)}")
    rows = spec.rows
    orders = {name: study.axes[name].display_labels for name in study.axes}
    frame = pd.DataFrame({name: runs[AXIS_TAG + name] for name in rows + ([spec.columns] if spec.columns else [])})
    for metric in metrics:
        frame[metric] = runs[f"metrics.eval/{metric}"].astype(float)
    by = rows + ([spec.columns] if spec.columns else [])
    if not by:
        frame["study"] = study.study
        by = ["study"]
    near = frame[by].assign(**{m: _near_chance(runs, m) for m in metrics})
    grouped = frame.groupby(by, sort=False)
    cells = grouped[metrics].agg(_cell)
    means = grouped[metrics].mean()
    flagged = near.groupby(by, sort=False)[metrics].any()
    if spec.columns:
        cells, means, flagged = (f[metrics[0]].unstack(spec.columns) for f in (cells, means, flagged))
        column_order = [c for c in orders[spec.columns] if c in cells.columns]
        cells, means, flagged = cells[column_order], means[column_order], flagged[column_order]
    if rows:
        index = pd.MultiIndex.from_product([orders[r] for r in rows], names=rows) if len(rows) > 1 \
            else pd.Index(orders[rows[0]], name=rows[0])
        present = [i for i in index if i in cells.index]
        cells, means, flagged = cells.loc[present], means.loc[present], flagged.loc[present]
    cells = cells.fillna("–")
    stds = grouped[metrics].std(ddof=1)
    stds = (stds[metrics[0]].unstack(spec.columns) if spec.columns else stds).reindex_like(means)
    maximize = study.objective is None or study.objective.direction == "maximize"
    along = spec.best if spec.columns else "column"
    best, on_par = best_cells(means, stds, along, maximize)
    note = ""
    if best.to_numpy().any():
        competing = (f"the best {spec.columns} of each row" if along == "row"
                     else f"the best {' / '.join(rows) or 'row'} of each column")
        note = (f"Bold: {competing} by mean{' ' + metrics[0] if spec.columns else ''}; {PAR}: within one std "
                "of it (the bold cell's seed std), what the papers call on par; a description, not a test.")
    flagged = flagged.fillna(False).astype(bool)
    near_note = ""
    if flagged.to_numpy().any():
        near_note = (f"†: fewer than {NEAR_CHANCE_Z:g} standard errors above chance in at least one seed "
                     "(z = (value − chance) / stderr, as `workbench eval` prints it).")
    chance = {m: float(runs[f"metrics.chance/{m}"].mean()) for m in metrics if f"metrics.chance/{m}" in runs}
    numbers = _cell_numbers(runs, frame, by, metrics, orders)
    pooled = [name for name, axis in study.axes.items() if name not in by and axis.size > 1]
    table = StudyTable(title, cells, means, stds, chance, len(runs), len(study.seed_list), best=best,
                       on_par=on_par, flagged=flagged, best_note=note, near_chance_note=near_note, cells=numbers,
                       pooled=pooled, metric_notes=metric_notes, row_axes=rows, column_axis=spec.columns,
                       metrics=metrics,
                       data_axes=[name for name in by if name in study.axes and "data.train" in study.axes[name].keys])
    reference = spec.reference_labels(study.axes) if spec.reference is not None else None
    table.reference = spec.reference
    table.cells, table.verdicts, table.verdict_notes = _verdicts(numbers, rows, spec.columns, reference, maximize)
    if spec.contrasts:
        pairs = [(spec.row_labels(a, study.axes), a, spec.row_labels(b, study.axes), b) for a, b in spec.contrasts]
        table.contrast_numbers, table.contrasts = _contrasts(numbers, rows, spec.columns, pairs, maximize)
    if reference is not None and pooled:
        table.verdict_notes.append(f"Cells pool every value of {', '.join(pooled)} (neither rows nor "
                                   "columns): their spread counts as seed noise.")
    return table


def best_cells(means: pd.DataFrame, stds: pd.DataFrame, along: str, maximize: bool
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Masks of the best cell of each column (``along="column"``) or row, and of the cells within that
    cell's std of it. A column (row) with under two filled cells has no best."""
    values, spreads = (means, stds) if along == "column" else (means.T, stds.T)
    best = pd.DataFrame(False, index=values.index, columns=values.columns)
    on_par = best.copy()
    for j in range(values.shape[1]):
        column = values.iloc[:, j].reset_index(drop=True).dropna()
        if len(column) < 2:
            continue
        top = int(column.idxmax() if maximize else column.idxmin())
        best.iloc[top, j] = True
        tolerance = spreads.iloc[top, j]
        if pd.notna(tolerance):
            near = (column - column[top]).abs() <= tolerance
            for i in near[near].index:
                on_par.iloc[int(i), j] = int(i) != top
    return (best, on_par) if along == "column" else (best.T, on_par.T)


def _cell_numbers(runs: pd.DataFrame, frame: pd.DataFrame, by: list[str], metrics: list[str],
                  orders: dict[str, list[str]]) -> pd.DataFrame:
    """One line per cell and metric, in table order: runs (n), distinct seeds, mean, std, mean item
    standard error, and each
    seed's value and run id (``value_seed_<s>``, ``run_id_seed_<s>``; a search study's repeats of one seed
    get ``.1``, ``.2``, …)."""
    seeds = runs[SEED_TAG] if SEED_TAG in runs else pd.Series(range(len(runs)), index=runs.index)
    seeds = seeds.astype(str)
    run_ids = runs["run_id"] if "run_id" in runs else pd.Series("", index=runs.index)
    lines = []
    for key, group in frame.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            values = group[metric].dropna()
            stderr = runs.loc[values.index, f"metrics.stderr/{metric}"].astype(float) \
                if f"metrics.stderr/{metric}" in runs else pd.Series(dtype=float)
            line = {**dict(zip(by, key)), "metric": metric, "n": len(values),
                    "seeds": seeds[values.index].nunique(),
                    "mean": values.mean() if len(values) else math.nan,
                    "std": values.std(ddof=1) if len(values) > 1 else math.nan,
                    "item_se": stderr.mean() if stderr.notna().any() else math.nan}
            for column in (c for c in COST_COLUMNS if c in runs):  # the cell's runs' costs, summed
                spent = runs.loc[group.index, column].astype(float)
                line[column.replace(".", "_")] = spent.sum() if spent.notna().any() else math.nan
            if STORED in runs:  # what the cell's training data took to store (the same for its seeds)
                line["reinforced_bytes"] = runs.loc[group.index, STORED].astype(float).mean()
            seen: dict[str, int] = {}
            for index in sorted(values.index, key=lambda i: (_seed_order(seeds[i]), runs.loc[i, "start_time"])):
                seed = seeds[index]
                name = seed if seed not in seen else f"{seed}.{seen[seed]}"
                seen[seed] = seen.get(seed, 0) + 1
                line[f"value_seed_{name}"] = values[index]
                line[f"run_id_seed_{name}"] = run_ids[index]
            lines.append(line)
    numbers = pd.DataFrame(lines)
    position = {name: {label: i for i, label in enumerate(orders.get(name, []))} for name in by}
    numbers = numbers.sort_values(by, kind="stable",  # the study file's order of each axis
                                  key=lambda col: col.map(lambda v: position[col.name].get(v, len(position[col.name]))))
    values = sorted((c for c in numbers if c.startswith("value_seed_")), key=_column_order)
    ids = sorted((c for c in numbers if c.startswith("run_id_seed_")), key=_column_order)
    fixed = [c for c in numbers if c not in values and c not in ids]
    return numbers[fixed + values + ids].reset_index(drop=True)


def _seed_order(seed: str) -> tuple:
    return (0, int(seed), "") if seed.lstrip("-").isdigit() else (1, 0, seed)


def _column_order(column: str) -> tuple:
    seed, _, repeat = column.rsplit("_", 1)[-1].partition(".")
    return (*_seed_order(seed), int(repeat or 0))


def _verdicts(numbers: pd.DataFrame, rows: list[str], column: str | None, reference: tuple[str, ...] | None,
              maximize: bool) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Each row against the reference row (in the same column, when the table has columns), per metric:
    ``numbers`` with the verdict columns (empty without a reference), the Markdown verdict table and its notes."""
    per_seed = [c for c in numbers if c.startswith(("value_seed_", "run_id_seed_"))]
    numbers = numbers.assign(reference=ROW_SEPARATOR.join(reference or ()), diff=math.nan, ci_low=math.nan,
                             ci_high=math.nan, df=math.nan, verdict="")
    numbers = numbers[[c for c in numbers if c not in per_seed] + per_seed]
    if reference is None:
        return numbers, pd.DataFrame(), []
    seeds = [c for c in numbers if c.startswith("value_seed_")]
    keyed = numbers.set_index([*rows, *([column] if column else []), "metric"])
    shown, few, no_item_se = [], False, False
    for i, line in numbers.iterrows():
        if tuple(line[r] for r in rows) == reference:
            numbers.loc[i, "verdict"] = "reference"
            continue
        shown_line = {**{r: line[r] for r in rows}, **({column: line[column]} if column else {}),
                      "metric": line["metric"]}
        ref_key = (*reference, *([line[column]] if column else []), line["metric"])
        if ref_key not in keyed.index:
            numbers.loc[i, "verdict"] = "reference has no runs"
            shown.append({**shown_line, "runs": f"{line['n']} vs 0", "difference": "–", "95% interval": "–",
                          "verdict": "reference has no runs"})
            continue
        ref = keyed.loc[ref_key]
        result, no_se = _compare_lines(line, ref, seeds, maximize)
        numbers.loc[i, ["diff", "ci_low", "ci_high", "df", "verdict"]] = \
            [result.diff, result.low, result.high, result.df, result.verdict]
        short = min(line["seeds"], ref["seeds"]) < HEADLINE_SEEDS
        few, no_item_se = few or short, no_item_se or no_se
        shown.append({**shown_line, **_shown(result, line, ref, short, no_se)})
    notes = [METHOD_NOTE + f" {'Higher' if maximize else 'Lower'} is better (the objective's direction). "
             "Item standard errors are the ones each run logs as `stderr/<metric>`: a task's binomial standard "
             "error, or for a headline column (zeroshot, retrieval, avg) and transfer √(Σ se²) / K over its K "
             "tasks'."]
    if few:
        notes.append(f"‡ fewer than {HEADLINE_SEEDS} seeds on a side: headline comparisons need ≥ "
                     f"{HEADLINE_SEEDS} seeds.")
    if no_item_se:
        notes.append("§ a side's runs logged no item standard error: that side counts seed noise only.")
    return numbers, pd.DataFrame(shown), notes


def _compare_lines(line: pd.Series, ref: pd.Series, seeds: list[str], maximize: bool) -> tuple[Comparison, bool]:
    """One cell's seed values against another's; and whether a side logged no item standard error."""
    item_se, ref_item_se = line["item_se"], ref["item_se"]
    no_se = math.isnan(item_se) or math.isnan(ref_item_se)
    result = compare(line[seeds].dropna().to_numpy(float), 0.0 if math.isnan(item_se) else item_se,
                     ref[seeds].dropna().to_numpy(float), 0.0 if math.isnan(ref_item_se) else ref_item_se,
                     higher_is_better=maximize)
    return result, no_se


def _shown(result: Comparison, line: pd.Series, ref: pd.Series, short: bool, no_se: bool) -> dict:
    """A comparison as the verdict tables print it."""
    return {"runs": f"{line['n']} vs {ref['n']}" + (" ‡" if short else ""), "difference": _signed(result.diff),
            "95% interval": "–" if math.isnan(result.low) else f"[{_signed(result.low)}, {_signed(result.high)}]",
            "verdict": result.verdict + (" §" if no_se else "")}


def _contrasts(numbers: pd.DataFrame, rows: list[str], column: str | None, pairs: list[tuple[tuple[str, ...], str,
               tuple[str, ...], str]], maximize: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``table.contrasts``: each pair of rows (in each column, per metric) compared as a row is against the
    reference. Numeric lines (for the CSV) and the printed table; rows without runs are left out."""
    seeds = [c for c in numbers if c.startswith("value_seed_")]
    keyed = numbers.set_index([*rows, *([column] if column else []), "metric"])
    columns = list(dict.fromkeys(numbers[column])) if column else [None]
    metrics = list(dict.fromkeys(numbers["metric"]))
    exact, shown = [], []
    for row, row_label, against, against_label in pairs:
        for value in columns:
            for metric in metrics:
                at = (*([value] if column else []), metric)
                if (*row, *at) not in keyed.index or (*against, *at) not in keyed.index:
                    continue
                line, ref = keyed.loc[(*row, *at)], keyed.loc[(*against, *at)]
                result, no_se = _compare_lines(line, ref, seeds, maximize)
                where = {**({column: value} if column else {}), "metric": metric}
                exact.append({"row": row_label, "against": against_label, **where, "n": line["n"],
                              "against_n": ref["n"], "diff": result.diff, "ci_low": result.low,
                              "ci_high": result.high, "df": result.df, "verdict": result.verdict})
                short = min(line["seeds"], ref["seeds"]) < HEADLINE_SEEDS
                shown.append({"row": row_label, "against": against_label, **where,
                              **_shown(result, line, ref, short, no_se)})
    return pd.DataFrame(exact), pd.DataFrame(shown)


def _signed(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.4f}".replace("-", "−")


def _near_chance(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Per run: is ``metric`` fewer than NEAR_CHANCE_Z standard errors above chance? (False when the run
    did not log its chance level or standard error.)"""
    columns = [f"metrics.{kind}/{metric}" for kind in ("eval", "chance", "stderr")]
    if not all(c in runs for c in columns):
        return pd.Series(False, index=runs.index)
    value, chance, stderr = (runs[c].astype(float) for c in columns)
    return value - chance < NEAR_CHANCE_Z * stderr  # NaN compares False
