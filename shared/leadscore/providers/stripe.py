# ruff: noqa: E501  (the meaning table below is a Markdown table, one row per line)
"""Stripe: what each event means, on API versions before and after 2025-03-31 ("basil").

Signature: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, HMAC-SHA256 of `{t}.{raw body}`
with the endpoint's signing secret (`whsec_...`), 300 s tolerance. Amounts arrive in minor
units; currencies in lower case. The payload's shape follows the endpoint's API version;
we read whichever fields are there, so both shapes work on one endpoint. Sources:
docs.stripe.com (webhooks, the basil changelog), dj-stripe's and stripe-mock's fixtures
(see tests/events/purchases/stripe/SOURCES.md).

| event (case) | canonical | amount | buyer | time |
|---|---|---|---|---|
| checkout.session.completed, `payment_status=paid` (mode payment or subscription) | purchase_made | `amount_total` | `customer_details.email`, `customer_email` | event `created` |
| checkout.session.completed, unpaid / no_payment_required / mode setup | ignored (a delayed method reports again) | | | |
| checkout.session.async_payment_succeeded | purchase_made (same order as the session) | `amount_total` | as above | `created` |
| checkout.session.async_payment_failed / expired | ignored | | | |
| invoice.paid / invoice.payment_succeeded, `amount_paid > 0` | purchase_made (one per invoice) | `amount_paid` | `customer_email`, else the order's or customer's lead | `status_transitions.paid_at` |
| invoice.paid, `amount_paid = 0` (trial, 100 % coupon) | ignored | | | |
| invoice_payment.paid (basil) | link only: payment intent -> invoice | | | |
| payment_intent.succeeded, charge.succeeded | link only (same money as the checkout/invoice) | | | |
| charge.refunded | purchase_refunded, cumulative per charge | `amount_refunded` | the order's lead | `created` |
| refund.created / refund.updated | link only (charge.refunded carries the money: counting both would double it) | | | |
| charge.dispute.closed, `status=lost` | purchase_refunded (refund id = dispute id) | dispute `amount` | the order's lead | `created` |
| charge.dispute.created / funds_withdrawn / funds_reinstated / closed won | ignored, see below | | | |
| anything else (customer.*, subscription.*, ...) | ignored | | | |

One payment, one order, whatever arrives in whatever order: the order key is the invoice
id when the payment belongs to an invoice (a subscription checkout names its first
invoice, a payment checkout with invoice creation names its invoice), else the payment
intent id. Every payload naming two ids feeds the alias index (charge -> payment intent ->
invoice); a refund or dispute names only charge and payment intent (on basil, never the
invoice) and finds its order through it. On basil the only event linking a payment intent
to its invoice is `invoice_payment.paid`: subscribe to it. A refund whose order is not
known yet is answered 503 (Stripe retries for up to three days) rather than lost.

Disputes: the withdrawn funds can be reinstated if the merchant wins, and a refund can only
grow in our ledger, so money counts as returned only when the dispute is closed as lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from marshmallow import fields

from leadscore import logs
from leadscore.domain.money import exponent
from leadscore.errors import ValidationFailed
from leadscore.providers import signing
from leadscore.providers.base import Edges, Inbound, ParseResult, WebhookProvider
from leadscore.providers.purchase_report import PurchaseReport, minor_units
from leadscore.providers.wire import WireSchema, load_json, schema_for

if TYPE_CHECKING:
    from leadscore.config import Settings

TOLERANCE_S = 300
Obj = dict[str, Any]


class _Data(WireSchema):
    object = fields.Dict(required=True)


class EventSchema(WireSchema):
    id = fields.String(required=True)
    type = fields.String(required=True)
    created = fields.Integer(required=True)
    data = fields.Nested(_Data, required=True)
    livemode = fields.Raw(load_default=None)
    account = fields.Raw(load_default=None)


def verify(raw: bytes, headers: dict[str, str], active: list[str], now: datetime) -> None:
    signing.verify_timestamped(raw, headers.get("stripe-signature"), active, now, TOLERANCE_S,
                               "LEADSCORE_STRIPE_SECRET", "Stripe-Signature")


def _text(obj: Any, *path: str) -> str | None:
    """A non-empty string at `path`; an expanded object gives its `id`."""
    value = obj
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    if isinstance(value, dict):
        value = value.get("id")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _at(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and value > 0 else None


def _links(pairs: Sequence[tuple[str | None, str | None]]) -> dict[str, str]:
    return {a: b for a, b in pairs if a and b and a != b}


# Where Stripe's minor unit is not ISO 4217's (docs.stripe.com/currencies): ISK stays a
# two-decimal currency in Stripe's API ("an ISK amount of 100 represents 1 krona"; ISO has
# no decimals), and MGA is on Stripe's zero-decimal list (ISO has two). Amounts are stored
# in ISO's minor units, so these are converted; an audit found them recorded 100x wrong.
STRIPE_DECIMALS = {"ISK": 2, "MGA": 0}


def in_iso_units(amount: int, code: str, where: str) -> int:
    """A Stripe amount in the currency's ISO 4217 minor units (exact, or a 422)."""
    if code not in STRIPE_DECIMALS:
        return amount
    shift = exponent(code) - STRIPE_DECIMALS[code]
    if shift >= 0:
        return int(amount * 10 ** shift)
    whole, rest = divmod(amount, 10 ** -shift)
    if rest:
        raise ValidationFailed(f"{where}: {amount} is not a whole {code} amount",
                               details=[{"field": where, "problem": "not whole in ISO units"}])
    return int(whole)


class _Event:
    """One event's envelope and object, with what every handler needs."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.type: str = data["type"]
        self.obj: Obj = data["data"]["object"]
        self.at = datetime.fromtimestamp(data["created"], UTC)

    def money(self, field: str) -> tuple[int, str]:
        where = f"data.object.{field}"
        amount, code = minor_units(self.obj.get(field), self.obj.get("currency"), where)
        return in_iso_units(amount, code, where), code

    def report(self, kind: str, order_id: str, amount: int = 0, currency: str = "XXX",
               **extra: Any) -> PurchaseReport:
        return PurchaseReport("stripe", kind, order_id, amount, currency,  # type: ignore[arg-type]
                              extra.pop("at", self.at), extra.pop("email", None),
                              event_type=self.type, **extra)


def _buyer_links(order_id: str, customer: str | None, email: str | None) -> dict[str, str]:
    """A customer whose address we know points at this order, for later nameless events."""
    return {customer: order_id} if customer and email else {}


def _checkout(e: _Event) -> list[PurchaseReport]:
    if e.obj.get("mode") == "setup" or e.obj.get("payment_status") != "paid":
        return []  # delayed methods report again with async_payment_succeeded
    amount, code = e.money("amount_total")
    if amount == 0:
        return []
    invoice, intent = _text(e.obj, "invoice"), _text(e.obj, "payment_intent")
    order = invoice or intent or str(e.obj.get("id"))
    email = _text(e.obj, "customer_details", "email") or _text(e.obj, "customer_email")
    customer = _text(e.obj, "customer")
    return [e.report("paid", order, amount, code, email=email, buyer_ref=customer,
                     aliases={**_links([(intent, invoice)]),
                              **_buyer_links(order, customer, email)})]


def _invoice_paid(e: _Event) -> list[PurchaseReport]:
    amount, code = e.money("amount_paid")
    invoice = _text(e.obj, "id")
    if amount == 0 or invoice is None:
        return []  # trials and fully discounted invoices are not purchases
    email, customer = _text(e.obj, "customer_email"), _text(e.obj, "customer")
    paid_at = _at((e.obj.get("status_transitions") or {}).get("paid_at")) or e.at
    return [e.report("paid", invoice, amount, code, email=email, buyer_ref=customer,
                     at=paid_at, aliases={  # pre-basil invoices name their payment
                         **_links([(_text(e.obj, "payment_intent"), invoice),
                                   (_text(e.obj, "charge"), invoice)]),
                         **_buyer_links(invoice, customer, email)})]


def _link(e: _Event, pairs: Sequence[tuple[str | None, str | None]]) -> list[PurchaseReport]:
    aliases = _links(pairs)
    return [e.report("link", next(iter(aliases.values())), aliases=aliases)] if aliases else []


def _invoice_payment(e: _Event) -> list[PurchaseReport]:
    invoice = _text(e.obj, "invoice")
    return _link(e, [(_text(e.obj, "payment", "payment_intent"), invoice),
                     (_text(e.obj, "payment", "charge"), invoice)])


def _payment_intent(e: _Event) -> list[PurchaseReport]:
    intent, invoice = _text(e.obj, "id"), _text(e.obj, "invoice")
    return _link(e, [(intent, invoice), (_text(e.obj, "latest_charge"), intent)])


def _charge(e: _Event) -> list[PurchaseReport]:
    charge, intent, invoice = (_text(e.obj, "id"), _text(e.obj, "payment_intent"),
                               _text(e.obj, "invoice"))
    return _link(e, [(charge, intent or invoice), (intent, invoice)])


def _refund_object(e: _Event) -> list[PurchaseReport]:
    return _link(e, [(_text(e.obj, "charge"), _text(e.obj, "payment_intent"))])


# Stripe retries an undelivered event for up to three days: a refund made longer than this
# after its charge, whose order is still unknown, refunds a payment no order event will
# ever name (a PaymentIntent of Elements or Terminal, or one from before the endpoint
# existed). It is acknowledged unmatched; 503s would only fail for three more days, and
# Stripe warns of, then disables, an endpoint that keeps failing.
ORDER_EVENTS_WAIT = timedelta(days=7)


def _order_may_come(e: _Event, since: Any) -> bool:
    """Whether the order of a payment made at or before `since` (unix seconds: a charge's
    or a dispute's `created`) may still arrive when this event was made."""
    return not (type(since) is int and 0 < since < 7_258_118_400  # 2200-01-01
                and e.at - datetime.fromtimestamp(since, UTC) > ORDER_EVENTS_WAIT)


def _charge_refunded(e: _Event) -> list[PurchaseReport]:
    amount, code = e.money("amount_refunded")  # cumulative for the charge
    charge, intent, invoice = (_text(e.obj, "id"), _text(e.obj, "payment_intent"),
                               _text(e.obj, "invoice"))
    if amount == 0 or charge is None:
        return []
    email = _text(e.obj, "billing_details", "email") or _text(e.obj, "receipt_email")
    order_may_come = _order_may_come(e, e.obj.get("created"))
    return [e.report("refund", invoice or intent or charge, amount, code,
                     email=email if order_may_come else None,  # never a made-up order
                     refund_id=charge, lookups=(charge,), must_match=order_may_come,
                     aliases=_links([(charge, intent or invoice), (intent, invoice)]))]


def _dispute(e: _Event) -> list[PurchaseReport]:
    charge, intent = _text(e.obj, "charge"), _text(e.obj, "payment_intent")
    links = _link(e, [(charge, intent)])
    if e.type != "charge.dispute.closed" or e.obj.get("status") != "lost":
        return links  # open, won or funds moving while undecided: no money back for good
    amount, code = e.money("amount")
    dispute = _text(e.obj, "id")
    if amount == 0 or dispute is None or (charge or intent) is None:
        return links
    # a dispute is opened after its payment: if that is a week before this event, the
    # payment's order can no longer come either
    return [e.report("refund", str(intent or charge), amount, code, refund_id=dispute,
                     lookups=(charge,) if charge else (),
                     must_match=_order_may_come(e, e.obj.get("created")),
                     aliases=_links([(charge, intent)]))]


HANDLERS: dict[str, Callable[[_Event], list[PurchaseReport]]] = {
    "checkout.session.completed": _checkout,
    "checkout.session.async_payment_succeeded": _checkout,
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,
    "invoice_payment.paid": _invoice_payment,
    "payment_intent.succeeded": _payment_intent,
    "charge.succeeded": _charge,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund_object,
    "refund.updated": _refund_object,
    "charge.dispute.created": _dispute,
    "charge.dispute.funds_withdrawn": _dispute,
    "charge.dispute.funds_reinstated": _dispute,
    "charge.dispute.closed": _dispute,
}


def parse(raw: bytes, connect_test_mode: bool = False) -> list[PurchaseReport]:
    data = load_json(schema_for(EventSchema), raw)
    event = _Event(data)
    if data["livemode"] is False and data["account"] and not connect_test_mode:
        # Stripe sends a Connect platform's production endpoint its connected accounts'
        # test-mode events too ("check the livemode value", docs.stripe.com/connect/
        # webhooks): not purchases. An account's own endpoint gets one mode only.
        logs.info("test-mode event of a connected account: acknowledged, ignored",
                  provider="stripe", type=event.type)
        return []
    handler = HANDLERS.get(event.type)
    reports = handler(event) if handler else []
    if not reports:
        logs.info("webhook acknowledged, nothing to record", provider="stripe",
                  type=event.type)
    return reports


class Stripe(WebhookProvider):
    name, function, path = "stripe", "purchase_webhook", "/stripe"
    settings = ("stripe_secret",)

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None:
        verify(request.raw, dict(request.headers), list(secrets), now)

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult:
        return ParseResult(purchases=parse(request.raw, settings.stripe_connect_test_mode))


PROVIDER = Stripe()
