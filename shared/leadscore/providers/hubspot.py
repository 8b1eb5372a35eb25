"""HubSpot CRM webhooks: deal changes become sales outcomes on the deal's contacts.

Set up (a HubSpot app's Webhooks page): target URL `https://.../crm_webhook/hubspot`, the
same URL in `LEADSCORE_HUBSPOT_WEBHOOK_URL` (HubSpot signs it), the app's client secret in
`LEADSCORE_HUBSPOT_CLIENT_SECRET`, and a private-app token in `LEADSCORE_HUBSPOT_TOKEN`
(scope crm.objects.deals.read and crm.objects.contacts.read) to look up a deal's contacts.
Subscribe to `deal.creation` and `deal.propertyChange` for `dealstage` (and `amount`).

| HubSpot event | leadscore |
|---|---|
| `deal.creation` (or `object.creation`, objectTypeId 0-3) | `outcome` opportunity_created |
| `deal.propertyChange` dealstage -> a won stage (`LEADSCORE_HUBSPOT_WON_STAGES`) | deal_won |
| `deal.propertyChange` dealstage -> a lost stage | deal_lost |
| `amount` change in the same request | the outcome's amount (`LEADSCORE_HUBSPOT_CURRENCY`) |
| any other subscription or stage | acknowledged, ignored |

Each outcome lands on every contact associated with the deal, keyed by HubSpot's event id,
so HubSpot's retries count once. Signature v3 and its 5-minute window are checked in
`integrations/hubspot_webhook.py`; each signature is a one-use token inside the window,
so a replayed request, byte-identical or not, is refused (HubSpot's retries carry a new
timestamp and so a new signature). A failed contact lookup
answers 503 and HubSpot retries; a deal with no contacts is acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from leadscore.config import Settings
from leadscore.domain.events import Event, OutcomeRecorded
from leadscore.domain.money import MoneyError, to_minor
from leadscore.errors import Unauthorized
from leadscore.integrations import hubspot_webhook as signature
from leadscore.providers.base import Edges, Inbound, ParseResult, TokenClaim, WebhookProvider
from leadscore.providers.json_body import parse_json
from leadscore.providers.signing import require_configured, secrets

SOURCE = "hubspot"


def _stages(value: str) -> list[str]:
    return secrets(value)


def _amount(value: Any, currency: str) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    try:
        return to_minor(str(value), currency), currency
    except MoneyError:
        return None, None


class HubSpot(WebhookProvider):
    name = "hubspot"
    function = "crm_webhook"
    path = "/hubspot"
    settings = ("hubspot_client_secret", "hubspot_webhook_url", "hubspot_token")

    def verify(self, request: Inbound, active: Sequence[str], now: datetime,
               edges: Edges) -> None:
        active = require_configured(list(active), "LEADSCORE_HUBSPOT_CLIENT_SECRET")
        uri = edges.settings.hubspot_webhook_url
        try:
            signature.verify_v3(request.method, uri, request.raw, request.headers, active, now)
        except signature.SignatureInvalid as exc:
            raise Unauthorized(f"HubSpot signature v3: {exc}") from None

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        payload = parse_json(request.raw)  # bad JSON or nesting too deep: 400
        try:
            outcomes = signature.deal_outcomes(payload, _stages(settings.hubspot_won_stages),
                                               _stages(settings.hubspot_lost_stages))
        except signature.PayloadInvalid:
            return ParseResult()  # signed, but nothing we know: acknowledged, ignored
        events: list[Event] = []
        ignored: list[str] = []
        for outcome in outcomes:
            if outcome["occurred_at"] is None:  # an occurredAt no date can hold: this one only
                ignored.append("invalid")
                continue
            amount, currency = _amount(outcome["amount"], settings.hubspot_currency)
            for email in edges.deal_contact_emails(outcome["deal_id"]):
                try:  # one contact's bad address costs only that contact its outcome
                    events.append(OutcomeRecorded(
                        email=email, source=SOURCE, idempotency_key=outcome["idempotency_key"],
                        occurred_at=outcome["occurred_at"], outcome=outcome["type"],
                        amount_minor=amount, currency=currency, deal_id=outcome["deal_id"]))
                except ValidationError:
                    ignored.append(f"{outcome['type']} (invalid)")
        stamp = request.headers.get(signature.SIGNATURE_HEADER.lower(), "")
        # each request owns its claim: HubSpot's own retries are new requests with a new
        # timestamp, so a new signature; the same signature twice is a replay, refused
        owner = f"{hashlib.sha256(request.raw).hexdigest()[:16]}:{uuid.uuid4().hex}"
        return ParseResult(events=events, ignored=ignored,
                           claims=[TokenClaim(f"hubspot-v3:{stamp}", owner)])


PROVIDER = HubSpot()
