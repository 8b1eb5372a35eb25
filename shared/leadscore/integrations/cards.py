"""Pure builders of what crosses the handover ports: a lead card and a CRM score record.

"Top reasons" are the history items that contribute most points *now*. With the rules at
hand an engagement item's points are faded to the change's moment with its own half-life
(fit never fades, purchases fade with the purchase half-life); without rules each item
counts with the points it earned at its own time. Caps are not re-applied (a capped burst
of opens may look a little stronger than it counts). Items of one rule are summed into one
reason ("Opened an email (x6)"), so a fit rule that stopped matching cancels itself out;
only reasons worth more than zero are shown. Decay and rescore entries are bookkeeping,
not reasons, and never appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from leadscore.domain import decay
from leadscore.domain.handover import StageChange
from leadscore.domain.rules import Rules
from leadscore.domain.state import HistoryEntry, HistoryItem, LeadState
from leadscore.integrations.ports import Activity, LeadCard, Reason, ScoreRecord

BOOKKEEPING = frozenset({"decay", "rescore"})
TOP_REASONS = 3
RECENT_ACTIVITIES = 5

PLAIN_WORDS = {
    "form.newsletter": "Signed up for the newsletter",
    "form.content_download": "Downloaded content",
    "form.webinar": "Registered for a webinar",
    "form.contact": "Sent the contact form",
    "form.free_sample": "Requested a free sample",
    "form.demo_request": "Requested a demo",
    "email.opened": "Opened an email",
    "email.clicked": "Clicked a link in an email",
    "email.delivered": "Was sent an email",
    "email.bounced_soft": "An email bounced (soft)",
    "email.bounced_hard": "An email bounced",
    "email.unsubscribed": "Unsubscribed",
    "email.complained": "Marked an email as spam",
    "email.resubscribed": "Subscribed again",
    "activity.website_visit": "Visited the website",
    "activity.pricing_page_visit": "Visited the pricing page",
    "activity.webinar_attended": "Attended a webinar",
    "activity.trial_started": "Started a trial",
    "purchase_made": "Bought",
    "purchase_refunded": "Was refunded",
}
_CAP_NOTE = re.compile(r" \(counts for at most .*\)$")
_FIELD_IS = re.compile(r"^([a-z_]+) = (.+)$")


def _humanise(key: str) -> str:
    tail = key.split(".", 1)[-1]
    return tail.replace("_", " ").capitalize()


def plain_reason(item: HistoryItem) -> str:
    """One history item in words a sales rep reads without the rules file."""
    if item.rule.startswith("fit."):
        text = item.reason.removeprefix("fit: ").removeprefix("fit no longer: ")
        field = _FIELD_IS.match(text)
        return (f"{field.group(1).replace('_', ' ').capitalize()}: {field.group(2)}"
                if field else text[:1].upper() + text[1:])
    if item.rule.startswith("purchase."):
        return item.reason[:1].upper() + item.reason[1:]
    reason = _CAP_NOTE.sub("", item.reason)
    if reason and reason != item.rule:  # the rules file gave its own words
        return reason[:1].upper() + reason[1:]
    return PLAIN_WORDS.get(item.rule) or _humanise(item.rule)


def _points_now(item: HistoryItem, entry: HistoryEntry, rules: Rules | None,
                now: datetime) -> float:
    if rules is None or item.rule.startswith("fit."):
        return item.points
    if item.rule.startswith("purchase."):
        return decay.faded(item.points, entry.at, now, rules.purchase_half_life())
    rule = rules.engagement.get(item.rule)
    if rule is None:
        return item.points
    return decay.faded(item.points, entry.at, now, rules.half_life_for(rule))


def top_reasons(history: Iterable[HistoryEntry], now: datetime, rules: Rules | None = None,
                limit: int = TOP_REASONS) -> list[Reason]:
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    words: dict[str, str] = {}
    for entry in history:
        if entry.kind in BOOKKEEPING:
            continue
        for item in entry.items:
            points = _points_now(item, entry, rules, now)
            totals[item.rule] = totals.get(item.rule, 0.0) + points
            if item.points > 0:
                counts[item.rule] = counts.get(item.rule, 0) + 1
                words.setdefault(item.rule, plain_reason(item))
    ranked = sorted((r for r in totals if totals[r] > 0 and r in words),
                    key=lambda r: (-totals[r], r))
    return [Reason(text=words[r], points=round(totals[r], 1), count=counts[r])
            for r in ranked[:limit]]


def _activity_text(entry: HistoryEntry) -> str:
    if entry.items:
        return plain_reason(max(entry.items, key=lambda i: abs(i.points)))
    return PLAIN_WORDS.get(entry.kind) or _humanise(entry.kind)


def recent_activities(history: Iterable[HistoryEntry],
                      limit: int = RECENT_ACTIVITIES) -> list[Activity]:
    done = sorted((e for e in history if e.kind not in BOOKKEEPING),
                  key=lambda e: (e.at, e.entry_id), reverse=True)
    return [Activity(at=e.at, text=_activity_text(e)) for e in done[:limit]]


def dashboard_link(template: str, lead_id: str) -> str | None:
    """The lead's dashboard page, by lead id only (an email never goes into a URL).
    `template` may hold `{lead_id}`; otherwise the id is appended as a path segment."""
    if not template:
        return None
    if "{lead_id}" in template:
        return template.replace("{lead_id}", lead_id)
    return template.rstrip("/") + "/" + lead_id


def _profile_text(lead: LeadState, *names: str) -> str | None:
    for name in names:
        value = lead.profile.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def display_name(lead: LeadState) -> str | None:
    first, last = _profile_text(lead, "first_name"), _profile_text(lead, "last_name")
    joined = " ".join(p for p in (first, last) if p)
    return joined or _profile_text(lead, "name")


def lead_card(lead: LeadState, history: Iterable[HistoryEntry], change: StageChange,
              dashboard_url: str, show_email: bool, rules: Rules | None = None) -> LeadCard:
    entries = list(history)
    return LeadCard(
        lead_id=lead.lead_id, change_id=change.id, name=display_name(lead),
        company=_profile_text(lead, "company"), job_title=_profile_text(lead, "job_title"),
        email=lead.email if show_email else None, score=round(change.score, 1),
        fit_score=round(lead.fit_score, 1), engagement_score=round(lead.engagement_score, 1),
        grade=change.grade, stage_before=change.stage_before, stage_after=change.stage_after,
        changed_at=change.at, reasons=top_reasons(entries, change.at, rules),
        activities=recent_activities(entries),
        dashboard_url=dashboard_link(dashboard_url, lead.lead_id))


def reasons_line(reasons: Iterable[Reason]) -> str:
    return "; ".join(f"{r.text}{f' (x{r.count})' if r.count > 1 else ''} ({r.points:+g})"
                     for r in reasons)


def score_record(lead: LeadState, history: Iterable[HistoryEntry], now: datetime,
                 rules: Rules | None = None) -> ScoreRecord:
    return ScoreRecord(
        lead_id=lead.lead_id, email=lead.email, score=round(lead.score, 1),
        fit_score=round(lead.fit_score, 1), engagement_score=round(lead.engagement_score, 1),
        grade=lead.grade, stage=lead.stage,
        top_reasons=reasons_line(top_reasons(history, now, rules)),
        scored_at=lead.scored_at or now)
