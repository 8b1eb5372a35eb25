"""Slack: a stage-change card posted to an incoming webhook (`LEADSCORE_SLACK_WEBHOOK_URL`).

The card is Block Kit: a header, who (name, title, company; the email only when
`LEADSCORE_SLACK_SHOW_EMAIL` allows), score, grade and stage change, the top three reasons
in plain words, the last few activities with their times, a button to the lead's dashboard
page and, when `LEADSCORE_SLACK_ACTION_URL` and `LEADSCORE_SLACK_ACTION_SECRET` are set,
signed accept/reject links (slack_actions.py).

Slack refuses a whole message (400 invalid_blocks) when one field is over its limit, so
every text is cut to its documented limit here: at most 50 blocks per message, 3,000
characters per section text, 2,000 per section field (10 fields), 150 for a header's
plain_text, 75 for a button label, 3,000 for a button URL, 10 context elements. Text from
leads is escaped for mrkdwn (&, <, >), so a name cannot ping @channel or hide a link, and
a cut never splits an escape.

Answers (Slack's incoming-webhook errors): 2xx delivered; 429 retry after Retry-After;
5xx or no answer retry; any other 4xx (invalid_blocks, invalid_payload, no_service,
channel_not_found, action_prohibited...) is permanent: resending cannot fix it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from leadscore.domain.handover import StageChange
from leadscore.domain.state import STAGES
from leadscore.integrations import slack_actions
from leadscore.integrations.http_out import request_json, retry_after_s
from leadscore.integrations.ports import (
    LeadCard,
    PermanentDelivery,
    RetryableDelivery,
)

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK = 3000  # Slack allows 40,000 in `text`; the notification needs far less
MAX_ROW = 500  # one reason or activity line; the list stays readable
ELLIPSIS = "…"
STAGE_LABELS = {"lead": "Lead", "mql": "MQL", "sql": "SQL", "customer": "Customer"}
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut_escaped(text: str, limit: int) -> str:
    """Cut already-escaped mrkdwn without leaving half an `&amp;` behind."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]) + ELLIPSIS


def _mrkdwn(text: str, limit: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": cut_escaped(text, limit)}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text, limit), "emoji": True}


def _date(at_unix: int, fallback: str) -> str:
    # Slack shows <!date^...> in the reader's own time zone; the fallback is UTC.
    return f"<!date^{at_unix}^{{date_short_pretty}} {{time}}|{fallback}>"


def _lines(title: str, rows: Iterable[str], limit: int = MAX_TEXT) -> str:
    """A titled list within `limit`: each row cut to MAX_ROW, whole rows only, then a count
    of the rows left out."""
    rows = [cut_escaped(r, MAX_ROW) for r in rows]
    text = f"*{title}*"
    for shown, row in enumerate(rows):
        if len(text) + 1 + len(row) > limit - 24:  # room for "…and N more"
            return text + f"\n…and {len(rows) - shown} more"
        text += "\n" + row
    return text


def blocks_for(card: LeadCard, links: dict[str, str] | None = None) -> list[dict[str, Any]]:
    who = card.name or "A lead"
    after = STAGE_LABELS.get(card.stage_after, card.stage_after)
    before = STAGE_LABELS.get(card.stage_before, card.stage_before)
    role = " at ".join(escape(p) for p in (card.job_title, card.company) if p)
    who_lines = [f"*Who*\n{escape(who)}"] + ([role] if role else []) + (
        [escape(card.email)] if card.email else [])
    fields = [
        _mrkdwn("\n".join(who_lines), MAX_FIELD),
        _mrkdwn(f"*Score*\n{card.score:g} (fit {card.fit_score:g} · engagement "
                f"{card.engagement_score:g})", MAX_FIELD),
        _mrkdwn(f"*Grade*\n{escape(card.grade)}", MAX_FIELD),
        _mrkdwn(f"*Stage*\n{escape(before)} → {escape(after)}", MAX_FIELD),
    ][:MAX_FIELDS]
    reasons = [f"{n}. {escape(r.text)}{f' (x{r.count})' if r.count > 1 else ''} "
               f"({r.points:+g})" for n, r in enumerate(card.reasons, 1)]
    activities = [f"• {_date(int(a.at.timestamp()), a.at.strftime('%Y-%m-%d %H:%M UTC'))} "
                  f"{escape(a.text)}" for a in card.activities]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(f"{after}: {who}", MAX_HEADER)},
        {"type": "section", "fields": fields},
        {"type": "section", "text": _mrkdwn(
            _lines("Why", reasons) if reasons else "*Why*\nNo scored activity yet")},
    ]
    if activities:
        blocks.append({"type": "section", "text": _mrkdwn(_lines("Recent activity",
                                                                   activities))})
    buttons = []
    if card.dashboard_url and len(card.dashboard_url) <= MAX_URL:
        buttons.append({"type": "button", "text": _plain("Open in dashboard", MAX_BUTTON_TEXT),
                        "url": card.dashboard_url, "action_id": "open_dashboard"})
    for action, label, style in (("accept", "Accept", "primary"),
                                 ("reject", "Reject", "danger")):
        url = (links or {}).get(action)
        if url and len(url) <= MAX_URL:
            buttons.append({"type": "button", "text": _plain(label, MAX_BUTTON_TEXT),
                            "url": url, "style": style, "action_id": f"sales_{action}"})
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    changed = card.changed_at.strftime("%Y-%m-%d %H:%M UTC")
    blocks.append({"type": "context", "elements": [
        _mrkdwn(f"leadscore · {_date(int(card.changed_at.timestamp()), changed)} · "
                f"change {escape(card.change_id)}")][:MAX_CONTEXT_ELEMENTS]})
    return blocks[:MAX_BLOCKS]


def message_for(card: LeadCard, links: dict[str, str] | None = None) -> dict[str, Any]:
    """The webhook body: blocks plus `text`, the notification and screen-reader fallback."""
    after = STAGE_LABELS.get(card.stage_after, card.stage_after)
    fallback = (f"{after}: {card.name or 'a lead'} (score {card.score:g}, "
                f"grade {card.grade})")
    return {"text": cut_escaped(escape(fallback), MAX_FALLBACK),
            "blocks": blocks_for(card, links)}


def should_notify(change: StageChange, stages: str) -> bool:
    """Only moves *up* into one of `stages` (LEADSCORE_SLACK_STAGES, e.g. "mql,sql")."""
    wanted = {s.strip().lower() for s in stages.split(",") if s.strip()}
    order: dict[str, int] = {s: n for n, s in enumerate(STAGES)}
    up = order.get(change.stage_after, -1) > order.get(change.stage_before, -1)
    return up and change.stage_after in wanted


class SlackNotifier:
    """Notifier over an incoming webhook. Builds nothing at import; no connection kept."""

    def __init__(self, webhook_url: str, *, action_url: str = "", action_secret: str = "",
                 action_ttl_s: int = 7 * 86400, timeout_s: float = 10,
                 clock: Callable[[], float] = time.time) -> None:
        self._url = webhook_url
        self._action_url = action_url
        self._action_secret = action_secret.split(",")[0].strip()
        self._ttl = action_ttl_s
        self._timeout = timeout_s
        self._clock = clock

    def links(self, card: LeadCard) -> dict[str, str]:
        if not (self._action_url and self._action_secret):
            return {}
        expires = int(self._clock()) + self._ttl
        return {action: slack_actions.action_link(self._action_url, self._action_secret,
                                                  card.lead_id, card.change_id, action,
                                                  expires)
                for action in ("accept", "reject")}

    def notify(self, card: LeadCard) -> None:
        answer = request_json("POST", self._url, message_for(card, self.links(card)), {},
                              self._timeout)
        if 200 <= answer.status < 300:
            return
        error = answer.body.decode("utf-8", "replace")[:100] or str(answer.status)
        if answer.status == 429:
            raise RetryableDelivery("slack rate_limited",
                                    retry_after_s(answer.header("Retry-After")), 429)
        if answer.status >= 500 or answer.status == 408:
            raise RetryableDelivery(f"slack {answer.status}")
        raise PermanentDelivery(f"slack {answer.status} {error}")
