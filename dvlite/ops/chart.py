"""Line charts of a metric across commits: SVG and HTML drawn here, PNG through matplotlib.

The SVG is written by hand so that the HTML chart is self-contained (no script,
no font, no network) and needs nothing installed; matplotlib, an optional
extra (``dvlite[plots]``), is imported only to draw a PNG. Commits are evenly
spaced along x: their order matters, not the time between them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from html import escape

from dvlite.errors import DvliteError

WIDTH, HEIGHT = 800, 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 24, 48, 96
_MAX_LABELS = 24  # x labels beyond this many would overlap; every k-th is shown
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-top:1.5em}td,th{padding:.2em .8em;text-align:left}
tr:nth-child(even){background:#f4f4f4}code{font-size:.95em}"""


@dataclass(frozen=True)
class Datum:
    label: str  # under the x axis
    value: float
    note: str  # shown on hover and in the HTML table


def svg(title: str, data: list[Datum]) -> str:
    """An SVG document: the values joined by a line, one circle per datum."""
    low, high, ticks = _y_scale([d.value for d in data])
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + (plot_w / 2 if len(data) == 1 else plot_w * i / (len(data) - 1))

    def y(value: float) -> float:
        return _TOP + plot_h * (high - value) / (high - low)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
             f'<title>{escape(title)}</title>',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="16">'
             f'{escape(title)}</text>']
    for tick in ticks:
        ty = y(tick)
        parts.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text x="{_LEFT - 8}" y="{ty + 4:.1f}" text-anchor="end">'
                     f'{_number(tick)}</text>')
    every = math.ceil(len(data) / _MAX_LABELS)
    for i, datum in enumerate(data):
        if i % every == 0:
            lx, ly = x(i), HEIGHT - _BOTTOM + 14
            parts.append(f'<text x="{lx:.1f}" y="{ly}" text-anchor="end" '
                         f'transform="rotate(-40 {lx:.1f} {ly})">{escape(datum.label)}</text>')
    coords = " ".join(f"{x(i):.1f},{y(d.value):.1f}" for i, d in enumerate(data))
    parts.append(f'<polyline points="{coords}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for i, datum in enumerate(data):
        parts.append(f'<circle class="point" cx="{x(i):.1f}" cy="{y(datum.value):.1f}" r="4" '
                     f'fill="#1f77b4"><title>{escape(datum.label)}: {_number(datum.value)} '
                     f'({escape(datum.note)})</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts)


def html(title: str, chart: str, data: list[Datum]) -> str:
    """A self-contained page: the SVG inline, and the values as a table under it."""
    rows = "\n".join(f"<tr><td><code>{escape(d.label)}</code></td><td>{_number(d.value)}</td>"
                     f"<td>{escape(d.note)}</td></tr>" for d in data)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{escape(title)}</h1>\n{chart}\n<table>\n"
            f"<tr><th>revision</th><th>value</th><th>commit</th></tr>\n{rows}\n</table>\n"
            "</body>\n</html>\n")


def png(title: str, data: list[Datum]) -> bytes:
    """The chart as PNG bytes, WIDTH x HEIGHT pixels, drawn by matplotlib."""
    try:
        # the object API, not pyplot: no global figure state, no GUI backend chosen
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError:
        raise DvliteError("drawing a PNG needs matplotlib, which is not installed",
                          hint="`pip install 'dvlite[plots]'`, or write an .html or .svg "
                          "chart, which needs nothing") from None
    figure = Figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=100)
    axes = figure.add_subplot()
    positions = list(range(len(data)))
    axes.plot(positions, [d.value for d in data], marker="o", color="#1f77b4")
    every = math.ceil(len(data) / _MAX_LABELS)
    axes.set_xticks(positions[::every], [d.label for d in data][::every], rotation=40,
                    ha="right")
    axes.set_title(title)
    axes.grid(axis="y", color="#ddd")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _y_scale(values: list[float]) -> tuple[float, float, list[float]]:
    """Bounds of the y axis and the ticks on it: round numbers that enclose the values."""
    low, high = min(values), max(values)
    if low == high:  # a flat line still needs a visible range around it
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step
    count = round((end - start) / step)
    return start, end, [start + i * step for i in range(count + 1)]


def _number(value: float) -> str:
    return f"{value:.6g}"
