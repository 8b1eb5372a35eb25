"""Inline SVG charts by string formatting: each has a <title> and an aria-label, and its
numbers are also given as a table beside it (`data_table`). Okabe-Ito colours."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BLUE, ORANGE, GREEN, VERMILION, SKY, PURPLE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7")
SERIES = [BLUE, ORANGE, GREEN, VERMILION, SKY, PURPLE]


def data_table(caption: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th scope='col'>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f"<details><summary>{escape(caption)}: the numbers</summary><table>"
            f"<caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></details>")


def bars(title: str, labels: Sequence[str], values: Sequence[float],
         markers: Sequence[tuple[float, str]] = (), width: int = 640, height: int = 220) -> str:
    """Vertical bars; a marker at fractional bar position `x` draws a labelled line."""
    n = max(1, len(values))
    top = max([*values, 1])
    plot_h, gap = height - 50, 4
    bar_w = (width - 20) / n
    parts = [f"<svg viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'"
             f" class='chart'><title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = 10 + i * bar_w
        parts.append(f"<rect x='{x + gap / 2:.1f}' y='{20 + plot_h - h:.1f}' "
                     f"width='{bar_w - gap:.1f}' height='{h:.1f}' fill='{BLUE}'>"
                     f"<title>{escape(label)}: {value:g}</title></rect>")
        parts.append(f"<text x='{x + bar_w / 2:.1f}' y='{height - 16}' font-size='10' "
                     f"text-anchor='middle'>{escape(label)}</text>")
    for (position, name), colour in zip(markers, (ORANGE, VERMILION, GREEN), strict=False):
        x = 10 + position * bar_w
        parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='12' y2='{20 + plot_h}' "
                     f"stroke='{colour}' stroke-width='2' stroke-dasharray='5 3'/>"
                     f"<text x='{x + 3:.1f}' y='12' font-size='11' fill='#222'>"
                     f"{escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def lines(title: str, xs: Sequence[str], series: dict[str, Sequence[float]],
          width: int = 640, height: int = 220) -> str:
    """One polyline per series over the same x labels (first and last labelled)."""
    top = max([1.0, *(v for s in series.values() for v in s)])
    n = max(2, len(xs))
    plot_w, plot_h = width - 60, height - 50

    def point(i: int, v: float) -> str:
        return f"{40 + plot_w * i / (n - 1):.1f},{20 + plot_h - plot_h * v / top:.1f}"

    parts = [f"<svg viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'"
             f" class='chart'><title>{escape(title)}</title>",
             f"<text x='4' y='24' font-size='10'>{top:g}</text>"
             f"<text x='4' y='{20 + plot_h}' font-size='10'>0</text>"]
    for (name, values), colour in zip(series.items(), SERIES, strict=False):
        pts = " ".join(point(i, v) for i, v in enumerate(values))
        if len(values) == 1:
            pts = f"{point(0, values[0])} {point(1, values[0])}"
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' "
                     f"points='{pts}'><title>{escape(name)}</title></polyline>")
    legend_x = 40
    for name, colour in zip(series, SERIES, strict=False):
        parts.append(f"<rect x='{legend_x}' y='{height - 14}' width='10' height='10' "
                     f"fill='{colour}'/><text x='{legend_x + 14}' y='{height - 5}' "
                     f"font-size='11'>{escape(name)}</text>")
        legend_x += 90
    if xs:
        parts.append(f"<text x='40' y='{height - 20}' font-size='10'>{escape(xs[0])}</text>"
                     f"<text x='{40 + plot_w}' y='{height - 20}' font-size='10' "
                     f"text-anchor='end'>{escape(xs[-1])}</text>")
    parts.append("</svg>")
    return "".join(parts)
