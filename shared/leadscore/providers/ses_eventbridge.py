"""Amazon SES events through Amazon EventBridge (`/email_webhook/ses-eventbridge`).

SES publishes each event to the account's default event bus (source `aws.ses`,
detail-types such as "Email Bounced", "Email Opened"; docs.aws.amazon.com/ses/latest/dg/
monitoring-eventbridge.html). A rule sends them to an *API destination* pointing at this
URL. EventBridge signs nothing: the API destination's *connection* adds a header you choose.
Create it with authorization type "API key", API key name `X-Leadscore-Key` and a long
random value, and put the same value in `LEADSCORE_SES_EVENTBRIDGE_SECRET` (several
comma-separated, so it can rotate); the header is compared in constant time.

The body is one EventBridge event; its `detail` is the same SES record SNS carries, mapped
by `ses_records` (see its table). Events from another `source`, or without a record, are
acknowledged and ignored. Record-derived keys make an EventBridge retry, and the same record
arriving by SNS too, count once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from leadscore.errors import Unauthorized, ValidationFailed
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.ses_records import record_events, record_label
from leadscore.providers.signing import any_matches, require_configured
from leadscore.providers.wire import parse_json

if TYPE_CHECKING:
    from leadscore.config import Settings

HEADER = "x-leadscore-key"


def verify(key: str | None, secrets: list[str]) -> None:
    secrets = require_configured(secrets, "LEADSCORE_SES_EVENTBRIDGE_SECRET")
    if not key:
        raise Unauthorized("missing X-Leadscore-Key header (the API destination's API key)")
    if not any_matches([key.strip().encode()], [s.encode() for s in secrets]):
        raise Unauthorized("wrong X-Leadscore-Key")


class SesEventBridge(WebhookProvider):
    name, function, path = "ses-eventbridge", "email_webhook", "/ses-eventbridge"
    settings = ("ses_eventbridge_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.headers.get(HEADER), list(secrets))

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        event = parse_json(request.raw)
        if not isinstance(event, dict):
            raise ValidationFailed("not an EventBridge event", details=[
                {"field": "(body)", "problem": "not an object"}])
        detail = event.get("detail")
        if event.get("source") != "aws.ses" or not isinstance(detail, dict):
            return ParseResult(ignored=["not-aws.ses"])
        events = record_events(detail, "detail")
        return ParseResult(events=events, ignored=[] if events else [record_label(detail)])


PROVIDER = SesEventBridge()
