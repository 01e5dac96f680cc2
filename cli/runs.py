"""``bandit-router runs ...`` and ``bandit-router regret ...``: saved runs and their regret curves.

A thin layer over :mod:`storage`: ``runs list`` reads the ``runs`` table, ``regret show``
overlays the cumulative regret curves of several runs in the terminal (plotext) with a
summary table, ``regret export`` writes the same curves as a PNG (matplotlib, Agg canvas)
or as a long-format CSV.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from bandit_router.cli.options import db_option
from bandit_router.errors import BanditRouterError

runs_app = typer.Typer(
    help="Saved simulation runs (replay, simulate, evaluate): list, show, delete. Example: "
    "bandit-router runs list --kind replay -n 10",
    no_args_is_help=True,
)
regret_app = typer.Typer(
    help="Cumulative regret curves of saved runs: overlay them in the terminal or export them. "
    "Example: bandit-router regret show 1 2 3",
    no_args_is_help=True,
)

_KINDS = ("replay", "simulate", "evaluate")


class NoCurveError(BanditRouterError):
    """The runs asked for have no curve to draw (no steps, or no budgeted regret)."""


class ExportTargetError(BanditRouterError):
    """``regret export`` needs a file to write, and a writable one."""


def register(app: typer.Typer) -> None:
    """Add the ``runs`` and ``regret`` command groups to the root app."""
    app.add_typer(runs_app, name="runs")
    app.add_typer(regret_app, name="regret")


# ---- helpers --------------------------------------------------------------------------------


def _open(db: str | None):
    from bandit_router.storage import open_store

    return open_store(db)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(value: Any, spec: str = ".3f") -> str:
    f = _num(value)
    return "-" if f is None else format(f, spec)


def _budget_text(record) -> str:
    parts = []
    if record.budget is not None:
        parts.append(f"${record.budget:.4g}")
    if record.budget_fraction is not None:
        parts.append(f"{record.budget_fraction:.0%}")
    if not parts:
        return "-"
    return parts[0] if len(parts) == 1 else f"{parts[0]} ({parts[1]})"


def _dataset_text(dataset: str, width: int = 28) -> str:
    name = dataset.replace("\\", "/")
    if "/" in name and len(name) > width:
        tail = name.rsplit("/", 2)
        name = "/".join(tail[-2:])
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _label(record) -> str:
    label = f"#{record.id} {record.policy}"
    if record.seed is not None:
        label += f" s{record.seed}"
    if record.budget_fraction is not None:
        label += f" b{record.budget_fraction:g}"
    elif record.budget is not None:
        label += f" ${record.budget:.3g}"
    return label


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def _list_row(record) -> dict[str, Any]:
    s = record.summary
    return {
        "id": record.id,
        "created": record.created_at.isoformat(timespec="seconds"),
        "kind": record.kind,
        "policy": record.policy,
        "dataset": record.dataset,
        "seed": record.seed,
        "budget": record.budget,
        "budget_fraction": record.budget_fraction,
        "status": record.status,
        "queries": s.get("queries", record.n_steps or None),
        "mean_reward": _num(s.get("mean_reward")),
        "cost_fraction": _num(s.get("cost_fraction")),
        "cumulative_regret": _num(s.get("cumulative_regret")),
    }


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in _KINDS:
        raise typer.BadParameter(f"use one of {', '.join(_KINDS)}", param_hint="--kind")


# ---- runs -----------------------------------------------------------------------------------


@runs_app.command("list")
def list_runs(
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Show at most this many runs."),
    kind: str | None = typer.Option(
        None, "--kind", help="Only runs of this kind: replay, simulate or evaluate."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON array (one object per run) instead of a table."
    ),
    db: str | None = db_option(),
) -> None:
    """List saved runs, newest first: id, created, kind, policy, dataset, seed, budget, metrics.

    Example:

        bandit-router runs list --kind replay -n 10
    """
    from bandit_router.storage.config import display_url

    _check_kind(kind)
    with _open(db) as store:
        records = store.runs.list(limit=limit, kind=kind)
        where = display_url(store.url)
    if as_json:
        typer.echo(json.dumps([_list_row(r) for r in records], indent=2))
        return
    if not records:
        what = f"{kind} runs" if kind else "runs"
        typer.echo(
            f"no {what} in {where} yet; create some with `bandit-router replay` or "
            "`bandit-router simulate`."
        )
        return
    headers = [
        "id", "created", "kind", "policy", "dataset", "seed", "budget",
        "queries", "mean reward", "cost frac", "regret", "status",
    ]  # fmt: skip
    rows = []
    for r in records:
        d = _list_row(r)
        rows.append(
            [
                str(r.id),
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.kind,
                r.policy,
                _dataset_text(r.dataset),
                "-" if r.seed is None else str(r.seed),
                _budget_text(r),
                "-" if d["queries"] is None else str(d["queries"]),
                _fmt(d["mean_reward"]),
                _fmt(d["cost_fraction"], ".1%"),
                _fmt(d["cumulative_regret"], ".1f"),
                r.status,
            ]
        )
    typer.echo(_table(headers, rows, right={0, 5, 7, 8, 9, 10}))


@runs_app.command("show")
def show_run(
    run_id: int = typer.Argument(..., help="Id of the run (see `bandit-router runs list`)."),
    db: str | None = db_option(),
) -> None:
    """Print one run as JSON: metadata, parameters, summary metrics and number of steps.

    Example:

        bandit-router runs show 3
    """
    with _open(db) as store:
        record = store.runs.get(run_id)
    typer.echo(json.dumps(record.to_dict(), indent=2, default=str))


@runs_app.command("delete")
def delete_runs(
    run_ids: list[int] = typer.Argument(..., help="Ids of the runs to delete."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    db: str | None = db_option(),
) -> None:
    """Delete runs and their per-step curves.

    Example:

        bandit-router runs delete 4 5 --yes
    """
    with _open(db) as store:
        records = [store.runs.get(rid) for rid in run_ids]  # unknown ids fail before asking
        if not yes:
            names = ", ".join(_label(r) for r in records)
            typer.confirm(f"delete {names}?", abort=True)
        for r in records:
            store.runs.delete(r.id)
    typer.echo(f"deleted {len(records)} run(s)")


# ---- regret ---------------------------------------------------------------------------------


def _load_curves(db: str | None, run_ids: Sequence[int], budgeted: bool):
    """(records, steps, column): the runs in the order given, their steps, the column to plot."""
    with _open(db) as store:
        records = [store.runs.get(rid) for rid in dict.fromkeys(run_ids)]
        steps = store.runs.steps([r.id for r in records])
    column = "budgeted_regret" if budgeted else "cumulative_regret"
    estimates = [r for r in records if r.kind == "evaluate"]
    if estimates:
        names = ", ".join(f"#{r.id}" for r in estimates)
        raise NoCurveError(
            f"run(s) {names} are off-policy estimates (`evaluate`), which have no regret "
            f"curve; see them with `bandit-router runs show {estimates[0].id}`."
        )
    have = {rid for rid, g in steps.groupby("run_id") if g[column].notna().any()}
    empty = [r for r in records if r.id not in have]
    if budgeted and empty:
        names = ", ".join(f"#{r.id}" for r in empty)
        if len(empty) == len(records):
            raise NoCurveError(
                f"run(s) {names} have no budgeted regret (they ran without a budget); "
                "drop --budgeted to see the cumulative regret."
            )
        typer.secho(f"warning: run(s) {names} have no budgeted regret; left out", err=True)
    elif empty:
        names = ", ".join(f"#{r.id}" for r in empty)
        if len(empty) == len(records):
            raise NoCurveError(
                f"run(s) {names} have no steps stored (still running or failed?); "
                "see `bandit-router runs list`."
            )
        typer.secho(f"warning: run(s) {names} have no steps; left out", err=True)
    records = [r for r in records if r.id in have]
    return records, steps[steps["run_id"].isin(have)], column


def _downsample(x: np.ndarray, y: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= points:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, points).round().astype(int))
    return x[idx], y[idx]


def _curves(records, steps: pd.DataFrame, column: str, points: int | None = None):
    out = []
    for r in records:
        g = steps[steps["run_id"] == r.id]
        g = g[g[column].notna()]
        x = g["step"].to_numpy(dtype=float)
        y = g[column].to_numpy(dtype=float)
        if points:
            x, y = _downsample(x, y, points)
        out.append((_label(r), x, y))
    return out


_MARKERS = ("•", "+", "x", "o", "*", "#", "%", "@", "=", "~")


def render_terminal_plot(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    *,
    title: str,
    ylabel: str,
    width: int,
    height: int,
    color: bool,
) -> str:
    """The curves overlaid in one plotext chart, as text (plotext 6 API, with a 5.x fallback)."""
    import plotext as plt

    if hasattr(plt, "figure") and hasattr(plt.figure, "signal"):  # plotext >= 6
        fig = plt.figure
        plt.terminal.limit(False, False)  # the size is chosen by the caller
        fig.clear()
        fig.theme("simple")
        fig.plot_size(width, height)
        for i, (label, x, y) in enumerate(curves):
            marker = None if color else _MARKERS[i % len(_MARKERS)]
            signal = fig.signal(x.tolist(), y.tolist(), marker=marker).lines().label(label)
            fig.draw(signal)
        fig.title(title)
        fig.label("step", "x")
        fig.label(ylabel, "y")
        try:
            text = fig.build().string(colorless=not color)
        finally:
            fig.clear()
            plt.terminal.limit()
        return text
    plt.clear_figure()  # pragma: no cover - plotext 5.x
    plt.theme("clear")
    plt.plotsize(width, height)
    for i, (label, x, y) in enumerate(curves):
        marker = None if color else _MARKERS[i % len(_MARKERS)]
        plt.plot(x.tolist(), y.tolist(), label=label, marker=marker)
    plt.title(title)
    plt.xlabel("step")
    plt.ylabel(ylabel)
    if not color:
        plt.colorless()
    text = plt.build()
    plt.clear_figure()
    return text


def _summary_table(records, steps: pd.DataFrame, column: str) -> str:
    headers = [
        "id", "policy", "dataset", "seed", "budget", "queries",
        "mean reward", "total cost", "cost frac", "regret", "budgeted regret",
    ]  # fmt: skip
    rows = []
    for r in records:
        g = steps[steps["run_id"] == r.id]
        s = r.summary
        last = g.iloc[-1] if len(g) else None
        mean_reward = s.get("mean_reward", g["reward"].mean() if len(g) else None)
        total_cost = s.get("total_cost", g["cost"].sum() if len(g) else None)
        regret = last["cumulative_regret"] if last is not None else s.get("cumulative_regret")
        budgeted = last["budgeted_regret"] if last is not None else s.get("budgeted_regret")
        rows.append(
            [
                str(r.id),
                r.policy,
                _dataset_text(r.dataset, 24),
                "-" if r.seed is None else str(r.seed),
                _budget_text(r),
                str(len(g)),
                _fmt(mean_reward),
                _fmt(total_cost, ".4g"),
                _fmt(s.get("cost_fraction"), ".1%"),
                _fmt(regret, ".1f"),
                _fmt(budgeted, ".1f"),
            ]
        )
    return _table(headers, rows, right={0, 3, 5, 6, 7, 8, 9, 10})


def _titles(budgeted: bool) -> tuple[str, str]:
    if budgeted:
        return "Budgeted regret (vs the hindsight LP optimum)", "budgeted regret"
    return "Cumulative regret (vs the per-query oracle)", "cumulative regret"


@regret_app.command("show")
def regret_show(
    run_ids: list[int] = typer.Argument(
        ..., help="Ids of the runs to overlay (see `bandit-router runs list`)."
    ),
    budgeted: bool = typer.Option(
        False,
        "--budgeted",
        help="Plot the budgeted regret (vs the hindsight LP optimum) instead of the regret "
        "against the per-query oracle; runs without a budget are left out.",
    ),
    width: int = typer.Option(
        0, "--width", min=0, help="Chart width in columns (0: the terminal's width)."
    ),
    height: int = typer.Option(
        0, "--height", min=0, help="Chart height in rows (0: a third of the terminal's width)."
    ),
    points: int = typer.Option(
        1000, "--points", min=10, help="Draw at most this many points per curve."
    ),
    color: bool | None = typer.Option(
        None,
        "--color/--no-color",
        help="Color the curves (default: only when writing to a terminal).",
        show_default=False,
    ),
    db: str | None = db_option(),
) -> None:
    """Overlay the cumulative regret curves of several runs in the terminal, with a summary table.

    Example:

        bandit-router regret show 1 3 5 --budgeted
    """
    records, steps, column = _load_curves(db, run_ids, budgeted)
    size = shutil.get_terminal_size((100, 30))
    w = width or max(40, min(size.columns, 200))
    h = height or max(12, min(w // 3, 40))
    title, ylabel = _titles(budgeted)
    if color is None:
        color = sys.stdout.isatty()
    chart = render_terminal_plot(
        _curves(records, steps, column, points),
        title=title,
        ylabel=ylabel,
        width=w,
        height=h,
        color=color,
    )
    typer.echo(chart)
    typer.echo("")
    typer.echo(_summary_table(records, steps, column))
    for line in reference_lines(records):
        typer.echo(line)


_REFERENCES = (
    ("lp_optimum_mean_reward", "per-query LP (sees every answer)"),
    ("per_task_mix_mean_reward", "best allocation per task"),
    ("static_mix_mean_reward", "best context-free mix of models"),
    ("oracle_mean_reward", "per-query oracle, no budget"),
)


def reference_lines(records) -> list[str]:
    """One line per dataset and budget: the hindsight references (mean reward per query)
    stored in the runs' summaries (runs saved before they were added have fewer).

    >>> from types import SimpleNamespace as NS
    >>> r = NS(dataset="t", budget_fraction=0.25, summary={"static_mix_mean_reward": 0.61})
    >>> reference_lines([r])
    ['reference (t, budget 0.25x, in hindsight): best context-free mix of models 0.610']
    """
    out, seen = [], set()
    for r in records:
        key = (r.dataset, r.budget_fraction)
        if key in seen:
            continue
        seen.add(key)
        s = r.summary or {}
        parts = [f"{label} {s[k]:.3f}" for k, label in _REFERENCES if s.get(k) is not None]
        if parts:
            b = "no budget" if r.budget_fraction is None else f"budget {r.budget_fraction:g}x"
            out.append(f"reference ({r.dataset}, {b}, in hindsight): " + "; ".join(parts))
    return out


def write_png(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: Path,
    *,
    title: str,
    ylabel: str,
    dpi: int = 120,
    fmt: str = "png",
) -> None:
    """The curves overlaid in one figure with a legend, written with matplotlib's Agg canvas
    in ``fmt`` (png, jpeg, svg or pdf; see ``cli.checks.figure_format``).

    Uses the object-oriented API (no pyplot), so the process's matplotlib backend is untouched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, x, y in curves:
        ax.plot(x, y, label=label, linewidth=1.4)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    fig.savefig(path, dpi=dpi, format=fmt)


def _long_frame(records, steps: pd.DataFrame) -> pd.DataFrame:
    meta = pd.DataFrame(
        [
            {
                "run_id": r.id,
                "label": _label(r),
                "kind": r.kind,
                "policy": r.policy,
                "dataset": r.dataset,
                "seed": r.seed,
                "budget": r.budget,
                "budget_fraction": r.budget_fraction,
            }
            for r in records
        ]
    )
    out = meta.merge(steps, on="run_id", how="inner", validate="one_to_many")
    order = {r.id: i for i, r in enumerate(records)}
    out = out.sort_values(
        ["run_id", "step"], key=lambda c: c.map(order) if c.name == "run_id" else c
    )
    return out.reset_index(drop=True)


def _writable(path: Path, option: str) -> Path:
    path = path.expanduser()
    if path.exists() and path.is_dir():
        raise ExportTargetError(f"{option} {path} is a directory; give a file name.")
    if not path.parent.exists():
        raise ExportTargetError(
            f"{option} {path}: the folder {path.parent} does not exist; create it first."
        )
    return path


@regret_app.command("export")
def regret_export(
    run_ids: list[int] = typer.Argument(
        ..., help="Ids of the runs to export (see `bandit-router runs list`)."
    ),
    png: Path | None = typer.Option(
        None,
        "--png",
        help="Write the overlaid curves with a legend to this figure file: .png, or .jpg, "
        ".svg, .pdf by its suffix.",
    ),
    csv: Path | None = typer.Option(
        None,
        "--csv",
        help="Write the curves to this CSV file in long format: one row per run and step, "
        "with the run's label, policy, seed and budget on every row.",
    ),
    budgeted: bool = typer.Option(
        False,
        "--budgeted",
        help="Plot the budgeted regret instead of the regret against the per-query oracle "
        "(the CSV always has both columns).",
    ),
    title: str | None = typer.Option(None, "--title", help="Title of the PNG figure."),
    dpi: int = typer.Option(120, "--dpi", min=30, max=600, help="Resolution of the PNG file."),
    db: str | None = db_option(),
) -> None:
    """Export the regret curves of several runs as a PNG figure and/or a long-format CSV.

    Example:

        bandit-router regret export 1 3 --png regret.png --csv regret.csv
    """
    if png is None and csv is None:
        raise ExportTargetError("give --png FILE and/or --csv FILE: nothing to write otherwise.")
    from bandit_router.cli.checks import figure_format

    png = _writable(png, "--png") if png is not None else None
    fmt = figure_format(png, "--png") if png is not None else "png"
    csv = _writable(csv, "--csv") if csv is not None else None
    records, steps, column = _load_curves(db, run_ids, budgeted)
    default_title, ylabel = _titles(budgeted)
    if png is not None:
        write_png(
            _curves(records, steps, column),
            png,
            title=title or default_title,
            ylabel=ylabel,
            dpi=dpi,
            fmt=fmt,
        )
        typer.echo(f"wrote {png} ({len(records)} curve(s))")
    if csv is not None:
        frame = _long_frame(records, steps)
        frame.to_csv(csv, index=False)
        typer.echo(f"wrote {csv} ({len(frame)} rows)")
