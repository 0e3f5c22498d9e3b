"""A study's table as a figure: each metric against the swept axis, mean ± std over seeds.

Drawn on a bare ``matplotlib.figure.Figure`` (no pyplot, so no GUI backend and no global state).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from workbench.report.table import StudyTable

REFERENCE = "reference"
"""The ``verdict`` the numeric cells give the reference row's own lines."""


def axis_plot(table: StudyTable, path: Path) -> bool:
    """Draw ``table`` to ``path`` (PNG): x is the column axis, else the last row axis; one series per value
    of the other row axes (joined by lines only when x is numeric); the reference row grey squares (or, when
    it is a point on x, a dashed level); chance dotted. False, and nothing written, when the table sweeps nothing (one cell per metric)."""
    cells = table.cells
    x_axis = table.column_axis or (table.row_axes[-1] if table.row_axes else None)
    if x_axis is None or cells[x_axis].nunique() < 2:
        return False
    series_axes = [axis for axis in table.row_axes if axis != x_axis]
    labels = list(dict.fromkeys(cells[x_axis].astype(str)))
    numeric = all(_is_number(label) for label in labels)
    position = {label: float(label) if numeric else float(i) for i, label in enumerate(labels)}
    groups = list(cells.groupby(series_axes, sort=False)) if series_axes else [((), cells)]
    spacing = 0.0 if numeric else 0.08
    figure = Figure(figsize=(max(4.5, 0.75 * len(labels) + 2.5) * len(table.metrics), 3.8), layout="constrained")
    axes = figure.subplots(1, len(table.metrics), squeeze=False)[0]
    for ax, metric in zip(axes, table.metrics):
        for k, (key, group) in enumerate(groups):
            lines = group[group["metric"] == metric]
            name = " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
            is_reference = (lines["verdict"] == REFERENCE).to_numpy()
            if not series_axes and is_reference.any():  # the control is one x: draw its level across
                level = lines.loc[is_reference, "mean"].iloc[0]
                ax.axhline(level, color="0.35", linestyle="--", linewidth=1, label=f"{table.reference} (reference)")
                lines = lines[~is_reference]
            x = [position[str(label)] + spacing * (k - (len(groups) - 1) / 2) for label in lines[x_axis]]
            reference = bool(series_axes) and is_reference.all()
            style = {"color": "0.3", "marker": "s"} if reference else {"marker": "o"}
            ax.errorbar(x, lines["mean"], yerr=lines["std"].fillna(0.0), markersize=4, capsize=3, linewidth=1,
                        linestyle=("--" if reference else "-") if numeric else "none",  # categories: no lines
                        label=(name + (" (reference)" if reference else "")) or None, **style)
        if metric in table.chance:
            ax.axhline(table.chance[metric], color="0.6", linestyle=":", linewidth=1, label="chance")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(x_axis)
        ax.set_ylabel(f"{metric} (mean ± std over seeds)", fontsize=8)
        ax.set_xticks(list(position.values()), labels, rotation=25 if max(map(len, labels)) > 6 else 0,
                      ha="right" if max(map(len, labels)) > 6 else "center", fontsize=8)
        if not numeric:
            ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    figure.suptitle(table.title, fontsize=10)
    figure.savefig(path, dpi=110, metadata={"Software": None})
    return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True



def storage_plot(table: StudyTable, path: Path) -> bool:
    """Each metric against the bytes of the reinforced data each cell trained on (MobileCLIP's accuracy
    against storage). False, and nothing written, unless cells on the same training data differ in size
    (sizes that differ only with the base dataset say nothing about storage)."""
    if table.data_axes and "reinforced_bytes" in table.cells:
        stored = table.cells[table.cells["reinforced_bytes"] > 0]
        if stored.empty or stored.groupby(table.data_axes)["reinforced_bytes"].nunique().max() < 2:
            return False
    return _against(table, path, "reinforced_bytes", 2**20, "reinforced data stored (MiB)", "accuracy against storage")


def latency_plot(table: StudyTable, path: Path) -> bool:
    """Each metric against the cell's student's fused image + text latency (MobileCLIP2 Fig. 1), where the
    study's axis is the student and ``workbench models --latency`` timed them. False otherwise."""
    return _against(table, path, "latency_ms", 1.0, f"image + text latency, fused (ms; {table.latency_device})",
                    "accuracy against latency")


def _against(table: StudyTable, path: Path, column: str, unit: float, xlabel: str, title: str) -> bool:
    """Each metric against a per-cell quantity, one labelled point per cell, mean ± std over seeds; False,
    and nothing written, unless the cells differ in it."""
    cells = table.cells
    if column not in cells:
        return False
    cells = cells[cells[column] > 0]
    if cells[column].nunique() < 2:
        return False
    names = [*table.row_axes, *([table.column_axis] if table.column_axis else [])]
    figure = Figure(figsize=(4.8 * len(table.metrics), 3.8), layout="constrained")
    axes = figure.subplots(1, len(table.metrics), squeeze=False)[0]
    for ax, metric in zip(axes, table.metrics):
        lines = cells[cells["metric"] == metric]
        x = lines[column] / unit
        ax.errorbar(x, lines["mean"], yerr=lines["std"].fillna(0.0), marker="o", markersize=4, capsize=3,
                    linestyle="none")
        for xi, y, (_, line) in zip(x, lines["mean"], lines.iterrows()):
            ax.annotate(" / ".join(str(line[n]) for n in names), (xi, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
        if x.max() > 4 * x.min():
            ax.set_xscale("log")
        if metric in table.chance:
            ax.axhline(table.chance[metric], color="0.6", linestyle=":", linewidth=1, label="chance")
            ax.legend(fontsize=7)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(f"{metric} (mean ± std over seeds)", fontsize=8)
        ax.grid(alpha=0.3)
    figure.suptitle(f"{table.title}: {title}", fontsize=10)
    figure.savefig(path, dpi=110, metadata={"Software": None})
    return True


LEGEND_INSIDE_MAX = 8
"""Legend entries a curve panel holds before the legend moves beside the panels."""


def curve_plot(table: StudyTable, path: Path) -> bool:
    """Draw :func:`curve_figure` to ``path`` (PNG). False, and nothing written, when there is no curve."""
    figure = curve_figure(table)
    if figure is None:
        return False
    figure.savefig(path, dpi=110, metadata={"Software": None})
    return True


def curve_figure(table: StudyTable) -> Figure | None:
    """The first metric during training against samples seen, one line per row (the mean over its seeds, a
    ± std band). A column axis gives one panel per column, except training budgets (``table.efficiency``):
    those share one log samples-seen axis, each row one colour, each budget its own line ending in a
    diamond, so a short budget's end point sits beside the longer runs' curves at the same samples seen.
    None when no run evaluated more than once."""
    curves = table.curves
    if curves.empty or curves.groupby("run_id")["step"].nunique().max() < 2:
        return None
    rows = list(table.row_axes)
    columns = list(dict.fromkeys(table.cells[table.column_axis])) if table.column_axis else [None]
    budgets = table.column_axis is not None and not table.efficiency.empty
    panels = [None] if budgets else columns
    order = list(dict.fromkeys(map(tuple, table.cells[rows].astype(str).to_numpy()))) if rows else [()]
    colours = {key: f"C{i % 10}" for i, key in enumerate(order)}
    figure = Figure(figsize=(max(6.5, 4.2 * len(panels)), 4.0), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    metric = table.metrics[0]
    for ax, panel in zip(axes, panels):
        labelled = set()
        for key in order:
            for column in columns if budgets else [panel]:
                mine = curves if column is None else curves[curves[table.column_axis] == column]
                group = mine[(mine[rows].astype(str) == list(key)).all(axis=1)] if rows else mine
                if group.empty:
                    continue
                by_step = group.groupby("step")["value"]
                mean, std = by_step.mean(), by_step.std(ddof=1).fillna(0.0)
                label = None if key in labelled else (" / ".join(key) or table.title)
                labelled.add(key)
                ax.plot(mean.index, mean.to_numpy(), marker="o", markersize=3, linewidth=1, color=colours[key],
                        label=label)
                ax.fill_between(mean.index, (mean - std).to_numpy(), (mean + std).to_numpy(), color=colours[key],
                                alpha=0.15, linewidth=0)
                if budgets:
                    ax.plot(mean.index[-1:], mean.to_numpy()[-1:], marker="D", markersize=6, color=colours[key],
                            linestyle="none")
        if metric in table.chance:
            ax.axhline(table.chance[metric], color="0.6", linestyle=":", linewidth=1, label="chance")
        title = str(panel) if panel is not None else metric
        ax.set_title(f"{title}: one line per {table.column_axis}, ◆ its end" if budgets else title, fontsize=10)
        ax.set_xlabel("samples seen")
        thousands = FuncFormatter(lambda value, _: f"{value / 1000:g}k")
        ax.xaxis.set_major_formatter(thousands)
        if budgets:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(thousands)
            ax.xaxis.set_minor_formatter(thousands)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{metric} during training (mean ± std over seeds)", fontsize=8)
    handles, labels = axes[-1].get_legend_handles_labels()
    if len(labels) > LEGEND_INSIDE_MAX:  # a long legend would hide the curves: it goes beside the panels
        figure.legend(handles, labels, fontsize=7, loc="outside right center")
    else:
        axes[-1].legend(fontsize=7)
    width = int(figure.get_figwidth() * 13)  # characters a 10 pt line holds across the figure
    figure.suptitle(textwrap.fill(f"{table.title}: learning curves", width), fontsize=10)
    return figure
