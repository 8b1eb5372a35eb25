"""Server-rendered pages. Everything from the store is escaped; lead pages are addressed by
lead id (a keyed hash), never by email."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode

from leadscore.dashboard.charts import bars, data_table, lines
from leadscore.dashboard.queries import Overview
from leadscore.dashboard.snapshot import GRADE_DIGITS, GRADE_LETTERS
from leadscore.domain.state import STAGES, HistoryEntry, LeadState

STYLE = """
:root{font-family:system-ui,sans-serif;color:#1a1a1a;background:#fafafa}
body{margin:0 auto;max-width:1240px;padding:12px}
header{display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap;gap:8px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,380px),1fr));gap:12px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;
min-width:0;overflow-x:auto}
.wide{grid-column:1/-1}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin:.2rem 0 .6rem}
.chart{width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #e3e3e3;padding:3px 6px;text-align:left}
.matrix td{text-align:center}.matrix a{display:block;padding:6px}
a{color:#0060a0}a:focus,button:focus,input:focus,summary:focus{outline:3px solid #E69F00;
outline-offset:2px}
.big{font-size:1.6rem;font-weight:600}.note{color:#555;font-size:.85rem}
button,input{font-size:1rem;padding:6px 10px}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
@media (max-width:600px){body{padding:6px}td,th{padding:2px 3px}}
"""


def layout(title: str, body: str, csrf: str | None = None) -> str:
    signout = ("<form method='post' action='/dashboard/logout'>"
               f"<input type='hidden' name='csrf' value='{escape(csrf)}'>"
               "<button type='submit'>Sign out</button></form>") if csrf else ""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{escape(title)} · leadscore</title><style>{STYLE}</style></head><body>"
            f"<header><h1><a href='/dashboard'>leadscore</a> · {escape(title)}</h1>{signout}"
            f"</header><main>{body}</main></body></html>")


def login(csrf: str, error: str | None = None) -> str:
    problem = f"<p role='alert' id='error'>{escape(error)}</p>" if error else ""
    return layout("Sign in", f"""<section><h2>Sign in</h2>{problem}
<form method='post' action='/dashboard/login'>
<input type='hidden' name='csrf' value='{escape(csrf)}'>
<label for='token'>Dashboard token</label>
<input id='token' name='token' type='password' autocomplete='current-password' required>
<button type='submit'>Sign in</button></form></section>""")


def _count(key: str, value: int) -> str:
    return f"<span data-count='{escape(key)}'>{value}</span>"


def _histogram(view: Overview) -> str:
    labels = [b.short for b in view.buckets]
    markers = []
    for threshold, name in ((view.mql, "MQL"), (view.sql, "SQL")):
        at = next((i for i, b in enumerate(view.buckets) if b.low == threshold), None)
        if at is not None:
            markers.append((float(at), f"{name} {threshold:g}"))
    title = f"Score distribution of {view.total} leads, MQL at {view.mql:g}, SQL at {view.sql:g}"
    return ("<section><h2>Score distribution</h2>"
            + bars(title, labels, [b.count for b in view.buckets], markers)
            + data_table("Score distribution", ["score", "leads"],
                         [(b.label, b.count) for b in view.buckets]) + "</section>")


def _funnel(view: Overview) -> str:
    title = "Leads by stage now"
    rows = "".join(f"<tr><th scope='row'>{s}</th><td>{_count('stage:' + s, view.stages[s])}"
                   "</td></tr>" for s in STAGES)
    days = list(view.over_time)
    series: dict[str, Sequence[float]] = {
        s: [view.over_time[d].get(f"stage:{s}", 0) for d in days] for s in STAGES}
    history = data_table("Stage counts by day", ["day", *STAGES],
                         [(d, *(view.over_time[d].get(f"stage:{s}", 0) for s in STAGES))
                          for d in days])
    return ("<section><h2>Funnel</h2>"
            + bars(title, list(STAGES), [view.stages[s] for s in STAGES])
            + f"<table><caption class='sr-only'>{title}</caption>{rows}</table>"
            "<h3>Stage counts over time (daily snapshots)</h3>"
            + lines("Stage counts by day", days, series) + history + "</section>")


def _matrix(view: Overview) -> str:
    head = "".join(f"<th scope='col'>{d}</th>" for d in GRADE_DIGITS)
    rows = ""
    for letter in GRADE_LETTERS:
        cells = "".join(
            f"<td><a href='/dashboard/leads?{urlencode({'grade': letter + d})}' "
            f"aria-label='grade {letter}{d}: {view.grades[letter + d]} leads'>"
            f"{_count('grade:' + letter + d, view.grades[letter + d])}</a></td>"
            for d in GRADE_DIGITS)
        rows += f"<tr><th scope='row'>{letter}</th>{cells}</tr>"
    return ("<section><h2>Fit &times; engagement grade</h2><table class='matrix'>"
            "<caption>Fit (A best) by engagement (1 best); each cell links to its leads"
            f"</caption><thead><tr><td></td>{head}</tr></thead><tbody>{rows}</tbody></table></section>")


def _lead_cell(lead: LeadState) -> str:
    return (f"<td><a href='/dashboard/leads/{escape(lead.lead_id)}'>"
            f"{escape(lead.lead_id[:12])}</a></td>")


def _hot(view: Overview) -> str:
    rows = "".join(
        f"<tr data-hot='{escape(h.lead.lead_id)}'>{_lead_cell(h.lead)}"
        f"<td>{escape(h.lead.stage)}</td><td>{_since(h.lead)}</td>"
        f"<td>{h.lead.score:.1f}</td><td>{escape(h.lead.grade)}</td><td>"
        + escape("; ".join(r.text for r in h.reasons)) + "</td></tr>" for h in view.hot)
    return ("<section class='wide'><h2>Hot leads</h2><table><caption class='sr-only'>"
            "Newest SQLs and MQLs</caption><thead><tr><th>lead</th><th>stage</th>"
            "<th>since</th><th>score</th>"
            f"<th>grade</th><th>top reasons</th></tr></thead><tbody>{rows}</tbody></table>"
            "<p class='note'>Newest first: the leads that reached SQL or MQL last.</p></section>")


def _since(lead: LeadState) -> str:
    return escape(lead.stage_since.strftime("%Y-%m-%d %H:%M")) if lead.stage_since else "-"


def _movers(view: Overview) -> str:
    def table(caption: str, leads: Sequence[LeadState], key: str) -> str:
        rows = "".join(f"<tr data-{key}='{escape(x.lead_id)}'>{_lead_cell(x)}"
                       f"<td>{x.movement:+.1f}</td><td>{x.score:.1f}</td>"
                       f"<td>{escape(x.stage)}</td></tr>" for x in leads)
        empty = "" if leads else "<tr><td colspan='4'>none</td></tr>"
        return (f"<table><caption>{caption}</caption><thead><tr><th>lead</th><th>moved</th>"
                f"<th>score</th><th>stage</th></tr></thead><tbody>{rows}{empty}</tbody></table>")

    return ("<section><h2>Top movers, last 7 days</h2>"
            + table("Up", view.movers_up, "mover-up")
            + table("Down", view.movers_down, "mover-down")
            + "<p class='note'>Score now less the score stored at the end of the day a week "
            "ago (a new lead moved from 0).</p></section>")


def _email_and_handovers(view: Overview) -> str:
    email = "".join(f"<tr><th scope='row'>{s}</th><td>{_count('email:' + s, n)}</td></tr>"
                    for s, n in view.email.items())
    hand = "".join(f"<tr><th scope='row'>{s}</th><td>{_count('handovers:' + s, n)}</td></tr>"
                   for s, n in view.handovers.items())
    return (f"<section><h2>Email health</h2><table>{email}<tr><th scope='row'>non-openers "
            f"(flagged)</th><td><a href='/dashboard/leads?non_opener=1'>"
            f"{_count('non_openers', view.non_openers)}</a></td></tr>"
            f"<tr><th scope='row'>machine-open share</th><td>{_share(view)}</td></tr>"
            "</table><p class='note'>Machine opens: opens the email service flags as "
            "automatic (Apple Mail Privacy Protection, image proxies, scanners); they score "
            "nothing. Share of all opens recorded.</p></section>"
            f"<section><h2>Handovers</h2><table>{hand}</table><p class='note'>sent: closed, every "
            "sink took it or refused it for good; given up: a sink never took it within the "
            "retries (logged by id); failed: not delivered after at least one "
            "attempt (retrying); pending: not tried yet. Closed changes are kept 30 days.</p>"
            "</section>")


def _share(view: Overview) -> str:
    share = view.machine_share
    text = "no opens yet" if share is None else f"{share:.1%}"
    return (f"<span data-share='machine'>{text}</span> <span class='note'>("
            f"{_count('opens:machine', view.opens['machine'])} of "
            f"{_count('opens:all', view.opens['machine'] + view.opens['human'])} opens)</span>")


def _table(caption: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _calibration(view: Overview) -> str:
    """The latest back-test saved by `leadscore calibrate` (it reads every history, so it is
    never run on page view): conversion by score band and the threshold table."""
    report = view.calibration
    current = next((r for r in (report or {}).get("results", []) if r["name"] == "current"),
                   None)
    if report is None or current is None or not report.get("conversions"):
        if not view.calibration_available:
            return ""
        return ("<section><h2>Calibration</h2><p class='note'>Once outcomes exist (purchases "
                "or <code>leadscore import outcomes</code>), run <code>leadscore calibrate"
                "</code>: its latest back-test appears here.</p></section>")
    bands = _table("Conversion by score band", ["band", "leads", "converted", "rate"],
                       [(b["label"], b["leads"], b["conversions"], _pct(b["rate"]))
                        for b in current["stage_bands"]])
    limits = _table("Thresholds", ["threshold", "leads at or above", "precision",
                                       "recall", "lift"],
                        [(f"{t['threshold']:g}", t["volume"], _pct(t["precision"]),
                          _pct(t["recall"]), "-" if t["lift"] is None else f"{t['lift']:.1f}x")
                         for t in current["thresholds"]])
    return (f"<section data-calibration='{escape(str(report['at'])[:10])}'><h2>Calibration"
            f"</h2><p>Back-test at {escape(str(report['at'])[:10])}, "
            f"{report['window_days']}-day window: {report['included']} leads, "
            f"{report['conversions']} converted ({_pct(report['base_rate'])}); rules "
            f"{escape(current['rules_version'])}, ROC AUC {_auc(current['auc'])}.</p>"
            f"{bands}{limits}<p class='note'>Saved by the last <code>leadscore calibrate"
            "</code> run.</p></section>")


def _auc(value: float | None) -> str:
    """Undefined (every counted lead won, or none did) shows as "-", as the CLI prints it,
    not as 0.000, which would read as a score that ranks every win last."""
    return "-" if value is None else f"{value:.3f}"


def overview(view: Overview, csrf: str) -> str:
    notes = "".join(f"<li>{escape(n)}</li>" for n in view.notes)
    body = (f"<p>Leads: <span class='big'>{_count('total', view.total)}</span></p>"
            "<div class='grid'>" + _histogram(view) + _funnel(view) + _matrix(view)
            + _email_and_handovers(view) + _hot(view) + _movers(view) + _calibration(view)
            + f"</div><ul class='note'>{notes}</ul>")
    return layout("Dashboard", body, csrf)


def lead_list(leads: Sequence[LeadState], title: str, csrf: str) -> str:
    rows = "".join(
        f"<tr><td><a href='/dashboard/leads/{escape(x.lead_id)}'>{escape(x.lead_id[:12])}</a>"
        f"</td><td>{escape(x.stage)}</td><td>{x.score:.1f}</td><td>{escape(x.grade)}</td>"
        f"<td>{escape(x.email_status)}</td></tr>" for x in leads)
    return layout(title, f"<section><h2>{escape(title)}</h2><table><thead><tr><th>lead</th>"
                  "<th>stage</th><th>score</th><th>grade</th><th>email</th></tr></thead>"
                  f"<tbody>{rows}</tbody></table><p class='note'>{len(leads)} shown, highest "
                  "score first.</p></section>", csrf)


def lead_page(lead: LeadState, history: Sequence[HistoryEntry], csrf: str) -> str:
    breakdown = [("score", f"{lead.score:.2f}"), ("fit", f"{lead.fit_score:.2f}"),
                 ("engagement", f"{lead.engagement_score:.2f}"), ("stage", lead.stage),
                 ("grade", lead.grade), ("email status", lead.email_status),
                 ("non-opener", "yes" if lead.non_opener else "no")]
    facts = "".join(f"<tr><th scope='row'>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                    for k, v in breakdown)
    profile = "".join(f"<tr><th scope='row'>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                      for k, v in sorted(lead.profile.items()))
    running, total = [], 0.0
    for entry in history:
        total += entry.delta
        running.append(round(total, 2))
    chart = lines("Score after each history entry (points added, decay included)",
                  [e.at.date().isoformat() for e in history], {"score": running})
    rows = "".join(f"<tr><td>{escape(e.at.isoformat(timespec='minutes'))}</td>"
                   f"<td>{escape(e.kind)}</td><td>{e.delta:+.2f}</td>"
                   f"<td>{escape(e.reason)}</td></tr>" for e in history)
    body = (f"<div class='grid'><section><h2>Score breakdown</h2><table>{facts}</table>"
            f"</section><section><h2>Profile</h2><table>{profile}</table></section></div>"
            f"<section><h2>History</h2>{chart}<table><thead><tr><th>at</th><th>event</th>"
            f"<th>points</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table>"
            "</section>")
    return layout(f"Lead {lead.lead_id[:12]}", body, csrf)
