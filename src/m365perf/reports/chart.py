"""An XmR chart as inline SVG, drawn as NHS England's Making Data Count charts are.

Grey line of values; the mean solid; the process limits dashed; the target in red,
dashed; each point coloured by its label (grey common cause, blue improvement, orange
concern, purple neither — ``Variation.colour``). Inline SVG needs no script, no image
files and prints sharp on paper; ``<title>`` and ``<desc>`` say in words what it shows.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from m365perf.domain.spc import SpcResult

__all__ = ["spc_svg"]

WIDTH, HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 12, 40
_TARGET = "#c00000"
_LINE = "#595959"


def spc_svg(chart: SpcResult, *, title: str, element_id: str) -> Markup:
    """The chart as an ``<svg>`` element; ``element_id`` ties its title for screen readers."""
    points = chart.points
    levels = [p.value for p in points]
    for p in points:
        levels += [v for v in (p.mean, p.lower, p.upper) if v is not None]
    if chart.target is not None:
        levels.append(chart.target)
    low, high = min(levels), max(levels)
    if high == low:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    step = plot_w / max(1, len(points) - 1)

    def x(i: int) -> float:
        return _LEFT + (i * step if len(points) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return _TOP + (high - v) / (high - low) * plot_h

    parts: list[str] = []
    # Limits and mean: one segment per run of points sharing them (a rebase moves them).
    for attr, style in (
        ("mean", f'stroke="{_LINE}" stroke-width="1.5"'),
        ("upper", f'stroke="{_LINE}" stroke-width="1" stroke-dasharray="6 4"'),
        ("lower", f'stroke="{_LINE}" stroke-width="1" stroke-dasharray="6 4"'),
    ):
        for start, end, level in _runs([getattr(p, attr) for p in points]):
            x1 = x(start) - step / 2 if start else x(start)
            x2 = x(end) + step / 2 if end < len(points) - 1 else x(end)
            parts.append(
                f'<line class="{attr}" x1="{x1:.1f}" y1="{y(level):.1f}" '
                f'x2="{x2:.1f}" y2="{y(level):.1f}" {style}/>'
            )
    if chart.target is not None:
        parts.append(
            f'<line class="target" x1="{_LEFT}" y1="{y(chart.target):.1f}" '
            f'x2="{WIDTH - _RIGHT}" y2="{y(chart.target):.1f}" stroke="{_TARGET}" '
            'stroke-width="1.5" stroke-dasharray="2 3"/>'
        )
    path = " ".join(f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(points))
    parts.append(f'<polyline points="{path}" fill="none" stroke="#a6a6a6" stroke-width="1.5"/>')
    for i, p in enumerate(points):
        parts.append(
            f'<circle class="point" cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="4" '
            f'fill="{p.colour}" stroke="#ffffff" stroke-width="0.5" '
            f'data-period="{escape(p.period)}" data-label="{escape(p.label.value)}"/>'
        )
    # Axis: the value range on the left, the first and last period below.
    for v in (high - pad, low + pad):
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#1a1a1a">{_number(v)}</text>'
        )
    labels = {0: "start", len(points) - 1: "end"}
    for i, anchor in labels.items():
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - _BOTTOM + 16}" text-anchor="{anchor}" '
            f'font-size="11" fill="#1a1a1a">{escape(points[i].period)}</text>'
        )
    parts.append(_legend(chart))
    latest = chart.latest
    desc = (
        f"{len(points)} points from {points[0].period} to {latest.period}; "
        f"mean {_number(latest.mean)}"
        + (
            f", process limits {_number(latest.lower)} to {_number(latest.upper)}"
            if latest.lower is not None and latest.upper is not None
            else ""
        )
        + (f", target {_number(chart.target)}" if chart.target is not None else "")
        + f". Latest point: {chart.summary()}."
    )
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="spc" role="img" aria-labelledby="{element_id}-t {element_id}-d">'
        f'<title id="{element_id}-t">{escape(title)}</title>'
        f'<desc id="{element_id}-d">{escape(desc)}</desc>' + "".join(parts) + "</svg>"
    )


def _legend(chart: SpcResult) -> str:
    y0 = HEIGHT - 10
    items = [
        (f'<line x1="0" y1="-4" x2="18" y2="-4" stroke="{_LINE}" stroke-width="1.5"/>', "mean"),
        (
            f'<line x1="0" y1="-4" x2="18" y2="-4" stroke="{_LINE}" stroke-dasharray="6 4"/>',
            "process limits",
        ),
    ]
    if chart.target is not None:
        items.append(
            (
                f'<line x1="0" y1="-4" x2="18" y2="-4" stroke="{_TARGET}" '
                'stroke-width="1.5" stroke-dasharray="2 3"/>',
                "target",
            )
        )
    seen: dict[str, str] = {}
    for p in chart.points:
        seen.setdefault(p.label.value, p.colour)
    for label, colour in seen.items():
        items.append((f'<circle cx="9" cy="-4" r="4" fill="{colour}"/>', label))
    out, left = [], _LEFT
    for mark, words in items:
        out.append(
            f'<g transform="translate({left},{y0})">{mark}'
            f'<text x="22" y="0" font-size="10" fill="#1a1a1a">{escape(words)}</text></g>'
        )
        left += 30 + 6 * len(words)
    return "".join(out)


def _runs(levels: list[float | None]) -> list[tuple[int, int, float]]:
    """(first, last, level) for each run of equal, known levels."""
    runs: list[tuple[int, int, float]] = []
    for i, level in enumerate(levels):
        if level is None:
            continue
        if runs and runs[-1][2] == level and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i, level)
        else:
            runs.append((i, i, level))
    return runs


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
