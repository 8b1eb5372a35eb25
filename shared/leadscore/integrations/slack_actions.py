"""Signed "accept / reject" links on a Slack card, and their check (for a later endpoint).

A link carries the lead id, the stage change id, the action, an expiry (unix seconds) and
`sig`: hex HMAC-SHA256 with `LEADSCORE_SLACK_ACTION_SECRET` over
"v1\\n<lead_id>\\n<change_id>\\n<action>\\n<expires>". The newline-joined message cannot be
re-split differently (no field holds a newline), so one link's signature never fits another.
Several comma-separated secrets are accepted when verifying, so the secret can rotate.

A valid link may be opened more than once before it expires (people double-click, chat
apps prefetch): the endpoint records the outcome keyed by change id and action, so a
repeat is harmless, and it asks the rep for a reason on a page before recording. Links
never carry the email (they end up in browser histories and proxy logs).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

from pydantic import BaseModel

Action = Literal["accept", "reject"]
OUTCOMES: dict[str, str] = {"accept": "sales_accepted", "reject": "sales_rejected"}


class ActionLinkInvalid(Exception):
    """A link that is forged, altered, expired or incomplete; say nothing more to the user."""


class SalesAction(BaseModel):
    lead_id: str
    change_id: str
    outcome: str  # sales_accepted | sales_rejected
    expires_at: datetime


def _message(lead_id: str, change_id: str, action: str, expires: int) -> bytes:
    return f"v1\n{lead_id}\n{change_id}\n{action}\n{expires}".encode()


def sign_action(secret: str, lead_id: str, change_id: str, action: Action,
                expires: int) -> str:
    return hmac.new(secret.encode(), _message(lead_id, change_id, action, expires),
                    hashlib.sha256).hexdigest()


def action_link(base_url: str, secret: str, lead_id: str, change_id: str, action: Action,
                expires: int) -> str:
    query = urlencode({"lead": lead_id, "change": change_id, "action": action,
                       "exp": str(expires),
                       "sig": sign_action(secret, lead_id, change_id, action, expires)})
    return f"{base_url}{'&' if '?' in base_url else '?'}{query}"


def verify_action(query: Mapping[str, str], secrets: Sequence[str],
                  now: datetime) -> SalesAction:
    """The action a link's query parameters ask for, if its signature holds and it has not
    expired; ActionLinkInvalid otherwise. Pure: the caller passes `now`."""
    try:
        lead_id, change_id = query["lead"], query["change"]
        action, sig, exp = query["action"], query["sig"], query["exp"]
    except KeyError:
        raise ActionLinkInvalid("incomplete link") from None
    # ASCII only: compare_digest refuses other text (a 500), and int() reads "²" and
    # 4,300 digits; an expiry of 12 digits reaches the year 33658
    if not (sig.isascii() and exp.isascii() and exp.isdigit() and len(exp) <= 12):
        raise ActionLinkInvalid("malformed link")
    expires = int(exp)
    if action not in OUTCOMES or not lead_id or not change_id:
        raise ActionLinkInvalid("unknown action")
    if any("\n" in part for part in (lead_id, change_id)):
        raise ActionLinkInvalid("malformed link")
    expected = [hmac.new(s.encode(), _message(lead_id, change_id, action, expires),
                         hashlib.sha256).hexdigest() for s in secrets if s]
    if not any(hmac.compare_digest(e, sig) for e in expected):
        raise ActionLinkInvalid("bad signature")
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        raise ActionLinkInvalid("expired")
    return SalesAction(lead_id=lead_id, change_id=change_id, outcome=OUTCOMES[action],
                       expires_at=expires_at)
