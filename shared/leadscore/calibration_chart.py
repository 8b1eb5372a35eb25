"""`leadscore calibrate --chart FILE.svg`: the back-test as one standalone SVG file.

Drawn from the same report `--json` prints, with the dashboard's small SVG helpers
(`dashboard/charts.py`, no plotting library): a reliability curve (the conversion rate in
each score quintile, lowest fifth first, beside the base rate: a score that predicts rises
steeply) and the lift in each stage-threshold band (its rate over the base rate), for each
rules set. Every number drawn is also in the file as text (its `<desc>` and the bars'
titles), so the chart can be read by a screen reader or checked by a program.
"""

from __future__ import annotations

from html import escape
from typing import Any

from leadscore.dashboard.charts import bars, lines

WIDTH, CHART_W, CHART_H, MARGIN = 680, 640, 220, 20


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def lift(rate: float | None, base: float | None) -> float | None:
    return round(rate / base, 2) if rate is not None and base else None


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report's numbers as sentences: the chart's description."""
    out = [f"cut-off {report['at'][:19]}, window {report['window_days']} days: "
           f"{report['included']} leads back-tested, {report['conversions']} converted "
           f"(base rate {_pct(report['base_rate'])})."]
    for r in report["results"]:
        auc, brier = r["auc_interval"], r["brier_interval"]
        out.append(f"{r['name']} ({r['rules_version']}): ROC AUC {_num(r['auc'])} "
                   f"[{_num(auc['low'])}, {_num(auc['high'])}], Brier {_num(r['brier'], 4)} "
                   f"[{_num(brier['low'], 4)}, {_num(brier['high'], 4)}].")
        out.append(f"{r['name']}, conversion by score quintile: " + "; ".join(
            f"{b['label']}: {b['leads']} leads, {b['conversions']} converted, "
            f"{_pct(b['rate'])}" for b in r["quantile_bands"]) + ".")
        out.append(f"{r['name']}, lift by stage threshold: " + "; ".join(
            f"{b['label']}: {b['leads']} leads, {_pct(b['rate'])}, lift "
            f"{_num(lift(b['rate'], report['base_rate']), 2)}" for b in r["stage_bands"]) + ".")
    return out


def _placed(svg: str, y: int) -> str:
    """A helper's chart (a viewBox only) placed at `y` in the page, at its own size."""
    return svg.replace("<svg ", f"<svg x='{MARGIN}' y='{y}' width='{CHART_W}' "
                       f"height='{CHART_H}' ", 1)


def _caption(y: int, text: str) -> str:
    return f"<text x='{MARGIN}' y='{y}' font-size='11' fill='#333'>{escape(text)}</text>"


def chart_svg(report: dict[str, Any]) -> str:
    """The standalone SVG document for a calibration report (`CalibrationReport` as JSON)."""
    results, base = report["results"], report["base_rate"]
    heading = [f"{report['included']} leads back-tested, {report['conversions']} converted "
               f"(base rate {_pct(base)})"]
    heading += [f"{r['name']} ({r['rules_version']}): ROC AUC {_num(r['auc'])}, "
                f"Brier {_num(r['brier'], 4)}" for r in results]
    parts = [f"<text x='{MARGIN}' y='{28 + 20 * i}' font-size='{15 if i == 0 else 13}'>"
             f"{escape(line)}</text>" for i, line in enumerate(heading)]
    y = 28 + 20 * len(heading) + 20
    for r in results:
        name = f"{r['name']} ({r['rules_version']})"
        quintiles = r["quantile_bands"]
        title = f"{name}: conversion rate (%) by score quintile, and the base rate"
        parts.append(f"<text x='{MARGIN}' y='{y}' font-size='13'>{escape(title)}</text>")
        parts.append(_placed(lines(title, [b["label"] for b in quintiles], {
            "converted (%)": [100 * (b["rate"] or 0.0) for b in quintiles],
            "base rate (%)": [100 * (base or 0.0)] * len(quintiles)},
            CHART_W, CHART_H), y + 6))
        parts.append(_caption(y + CHART_H + 22, "converted: " + ", ".join(
            f"{b['label']} {_pct(b['rate'])}" for b in quintiles)))
        y += CHART_H + 60
        title = f"{name}: lift (rate / base rate) by stage-threshold band"
        parts.append(f"<text x='{MARGIN}' y='{y}' font-size='13'>{escape(title)}</text>")
        parts.append(_placed(bars(title, [b["label"] for b in r["stage_bands"]],
                                  [lift(b["rate"], base) or 0.0 for b in r["stage_bands"]],
                                  width=CHART_W, height=CHART_H), y + 6))
        parts.append(_caption(y + CHART_H + 22, "lift: " + ", ".join(
            f"{b['label']} {_num(lift(b['rate'], base), 2)}" for b in r["stage_bands"])))
        y += CHART_H + 60
    title = (f"leadscore calibration: cut-off {report['at'][:10]}, "
             f"window {report['window_days']} days")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{y}' "
            f"viewBox='0 0 {WIDTH} {y}' role='img' font-family='sans-serif'>"
            f"<title>{escape(title)}</title>"
            f"<desc>{escape(chr(10).join(summary_lines(report)))}</desc>"
            f"<rect width='100%' height='100%' fill='white'/>{''.join(parts)}</svg>\n")
