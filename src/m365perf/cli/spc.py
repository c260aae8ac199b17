"""``m365perf spc``: an NHS "Making Data Count" XmR chart of one indicator's series."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from m365perf.domain.kinds import Polarity
from m365perf.domain.spc import DEFAULT_BASELINE, Rebase, SpcResult, Variation, analyse

EXIT_BAD_INPUT = 2

_SYMBOLS = {
    Variation.COMMON_CAUSE: "o",
    Variation.IMPROVEMENT: "+",
    Variation.CONCERN: "x",
    Variation.NEITHER: "*",
}
_CHART_HEIGHT = 15


class _BadInput(Exception):
    """A problem with the series file, already worded as ``file:line: message``."""


@click.command()
@click.argument("series", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--polarity",
    type=click.Choice([p.value for p in Polarity]),
    required=True,
    help="Which way is better for this indicator.",
)
@click.option("--target", type=float, help="Target, for the assurance of the latest point.")
@click.option(
    "--baseline",
    type=click.IntRange(min=2),
    default=DEFAULT_BASELINE,
    show_default=True,
    help="Points that fix the mean and limits (NHS England's tools use 12 to 20).",
)
@click.option("--screen", is_flag=True, help="Drop moving ranges of 3.267 x mR-bar or more.")
@click.option(
    "--rebase",
    "rebases",
    multiple=True,
    metavar="PERIOD=REASON",
    help="New limits from PERIOD, for the recorded REASON (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the chart to this PNG file (needs matplotlib).",
)
def spc(
    series: Path,
    polarity: str,
    target: float | None,
    baseline: int,
    screen: bool,
    rebases: tuple[str, ...],
    as_json: bool,
    png: Path | None,
) -> None:
    """Chart SERIES.csv (columns period,value; oldest first) with the XmR rules.

    Labels each point common cause or special cause (improvement, concern or
    neither), and says whether the target is reliably met. Exits 2 on bad input.
    """
    try:
        points = _read_series(series)
        recorded = [_parse_rebase(text) for text in rebases]
        try:
            result = analyse(
                points,
                Polarity(polarity),
                target=target,
                baseline=baseline,
                screen=screen,
                rebases=recorded,
            )
        except ValueError as exc:
            raise _BadInput(f"{series}: {exc}") from None
    except _BadInput as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_BAD_INPUT)
    if png is not None:
        _draw_png(result, png, title=series.stem)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    for line in _report(result, series):
        click.echo(line)


# --- reading ------------------------------------------------------------------------


def _read_series(path: Path) -> list[tuple[str, float]]:
    from m365perf.csvfiles import UnreadableCsv, read_table

    try:
        table = read_table(path)
    except UnreadableCsv as exc:
        raise _BadInput(str(exc)) from None
    names = [h.strip().lower() for h in table.header]
    if "period" not in names or "value" not in names:
        raise _BadInput(f"{path}:1: the first row must name the columns 'period' and 'value'")
    period_at, value_at = names.index("period"), names.index("value")
    for bad in table.bad:
        click.echo(f"{path}:{bad.line}: note: {bad.reason}; skipped", err=True)
    points: list[tuple[str, float]] = []
    for row in table.lines:
        line, cells = row.line, row.cells
        period = cells[period_at].strip() if period_at < len(cells) else ""
        cell = cells[value_at].strip() if value_at < len(cells) else ""
        if not period:
            raise _BadInput(f"{path}:{line}: the row has no period")
        if not cell:
            click.echo(f"{path}:{line}: note: no value for {period}; skipped", err=True)
            continue
        points.append((period, _parse_value(cell, f"{path}:{line}")))
    if not points:
        raise _BadInput(f"{path}: no values to chart")
    return points


def _parse_value(cell: str, where: str) -> float:
    """A number as spreadsheets write it: "6,840" and "5.4%" are accepted."""
    cleaned = cell.replace(",", "").removesuffix("%").strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise _BadInput(f"{where}: value {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise _BadInput(f"{where}: value {cell!r} is not a finite number")
    return value


def _parse_rebase(text: str) -> Rebase:
    period, sep, reason = text.partition("=")
    if not sep or not period.strip() or not reason.strip():
        raise _BadInput(f"--rebase {text!r}: write PERIOD=REASON, e.g. '2020-21=new service model'")
    return Rebase(period.strip(), reason.strip())


# --- text output --------------------------------------------------------------------


def _report(result: SpcResult, series: Path) -> list[str]:
    points = result.points
    lines = [
        f"XmR chart of {series.name}: {len(points)} points, polarity {result.polarity.value}"
        + (f", target {_fmt(result.target)}" if result.target is not None else ""),
        f"Latest limits rest on {result.baseline} points"
        + (" (trial limits: they will move as points arrive)" if result.trial_limits else ""),
    ]
    lines += [f"Rebased from {r.from_period}: {r.reason}" for r in result.rebases]
    lines.append("")
    table = [("#", "Period", "Value", "Mean", "Lower", "Upper", "Label", "Rules")]
    for n, p in enumerate(points, start=1):
        table.append(
            (
                str(n),
                p.period,
                _fmt(p.value),
                _fmt(p.mean),
                _fmt(p.lower),
                _fmt(p.upper),
                p.label.value,
                ", ".join(r.value for r in p.rules) or "-",
            )
        )
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    numeric = {0, 2, 3, 4, 5}
    for row in table:
        cells = [
            cell.rjust(widths[c]) if c in numeric else cell.ljust(widths[c])
            for c, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    lines += _ascii_chart(result)
    lines.append("")
    lines.append(f"Latest point ({result.latest.period}): {result.summary()}")
    return lines


def _ascii_chart(result: SpcResult) -> list[str]:
    """Time runs left to right; each point is a symbol for its label."""
    points = result.points
    levels = [p.value for p in points] + [p.mean for p in points]
    levels += [y for p in points for y in (p.lower, p.upper) if y is not None]
    if result.target is not None:
        levels.append(result.target)
    top, bottom = max(levels), min(levels)
    if top == bottom:
        top, bottom = top + 1, bottom - 1

    def row(y: float) -> int:
        return round((top - y) / (top - bottom) * (_CHART_HEIGHT - 1))

    n = len(points)
    step = 3 if n <= 30 else 2 if n <= 60 else 1
    grid = [[" "] * (n * step) for _ in range(_CHART_HEIGHT)]
    for i, p in enumerate(points):
        lines = ((result.target, "~"), (p.mean, "-"), (p.lower, "="), (p.upper, "="))
        for level, mark in lines:
            if level is not None:
                for c in range(i * step, (i + 1) * step):
                    grid[row(level)][c] = mark
        grid[row(p.value)][i * step + step // 2] = _SYMBOLS[p.label]

    notes: dict[int, list[str]] = {}
    latest = result.latest
    named = [("upper limit", latest.upper), ("mean", latest.mean), ("lower limit", latest.lower)]
    named.append(("target", result.target))
    for name, level in named:
        if level is not None:
            notes.setdefault(row(level), []).append(f"{name} {_fmt(level)}")
    axis = {0: _fmt(top), _CHART_HEIGHT - 1: _fmt(bottom)}
    width = max(len(a) for a in axis.values())
    out = []
    for r, cells in enumerate(grid):
        note = ("  " + ", ".join(notes[r])) if r in notes else ""
        out.append(f"{axis.get(r, '').rjust(width)} |{''.join(cells)}{note}".rstrip())
    out.append(" " * width + " +" + "-" * (n * step))
    ticks = [" "] * (n * step + 4)
    for i in range(0, n, 5 if n > 10 else 1):
        label = str(i + 1)
        at = i * step + step // 2
        ticks[at : at + len(label)] = list(label)
    out.append(" " * (width + 2) + "".join(ticks).rstrip() + "   (point #, see the table)")
    out.append("  ".join(f"{symbol} {variation.value}" for variation, symbol in _SYMBOLS.items()))
    out.append("= process limits  - mean" + ("  ~ target" if result.target is not None else ""))
    return out


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:.1f}"


# --- PNG output ---------------------------------------------------------------------


def _draw_png(result: SpcResult, path: Path, *, title: str) -> None:
    """Draw with matplotlib, imported here so the package works without it."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError:
        raise click.ClickException(
            "--png needs matplotlib; install it with: pip install matplotlib"
        ) from None
    points = result.points
    x = list(range(len(points)))

    def series(values: Sequence[float | None]) -> list[float]:
        return [math.nan if v is None else v for v in values]

    figure = Figure(figsize=(10, 5), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(x, [p.value for p in points], color="#a6a6a6", linewidth=1, zorder=1)
    ax.scatter(x, [p.value for p in points], c=[p.colour for p in points], s=36, zorder=3)
    ax.plot(x, series([p.mean for p in points]), color="black", linewidth=1)
    for limit in (series([p.upper for p in points]), series([p.lower for p in points])):
        ax.plot(x, limit, color="#7f7f7f", linestyle="--", linewidth=1)
    if result.target is not None:
        ax.axhline(result.target, color="#c00000", linestyle=":", linewidth=1.5)
    ax.set_xticks(x, [p.period for p in points], rotation=45, ha="right", fontsize=8)
    ax.set_title(f"{title}\n{result.summary()}", fontsize=10)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=v.colour, label=v.value) for v in Variation
    ]
    handles.append(Line2D([], [], color="black", label="mean"))
    handles.append(Line2D([], [], color="#7f7f7f", linestyle="--", label="process limits"))
    if result.target is not None:
        handles.append(Line2D([], [], color="#c00000", linestyle=":", label="target"))
    ax.legend(handles=handles, fontsize=7, loc="best")
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
