"""Every documented purchase event means what its platform says (issue 13), table-driven.

Fixtures and their sources: tests/events/purchases/<platform>/SOURCES.md and MEANING.md.
Each story delivers a platform's payloads in the order they happen, signed with the
platform's documented scheme, and checks after each one which history entries it added:
kind, time, amount and currency as the source says. Every answer is a 2xx, and delivering
the whole story a second time changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import EVENTS_DIR

from functional.conftest import client_for
from functional.test_purchase_webhook import send, signed
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for

BUYER = "buyer@example.com"
Entry = tuple[str, datetime, int, str]  # kind, occurred at, amount (minor units), currency


def at(value: int | str) -> datetime:
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(value).astimezone(UTC)


def paid(when: int | str, amount: int, currency: str) -> Entry:
    return ("purchase_made", at(when), amount, currency)


def refunded(when: int | str, amount: int, currency: str) -> Entry:
    return ("purchase_refunded", at(when), amount, currency)


@dataclass
class Story:
    platform: str
    email: str
    steps: list[tuple[str, list[Entry]]]  # fixture, the entries it adds
    orders: dict[str, tuple[int, int, str]] = field(default_factory=dict)


def topic_of(platform: str, fixture: str) -> str:
    if platform == "shopify":
        name = fixture.removeprefix("shopify_").removeprefix("test_").removesuffix(".json")
        name = name.removesuffix("_pending").removesuffix("_no_money")
        return name.replace("orders_", "orders/").replace("refunds_", "refunds/")
    if platform == "woocommerce":
        return "order.deleted" if "deleted" in fixture else (
            "order.created" if "created" in fixture else "order.updated")
    return ""


def body(platform: str, fixture: str) -> bytes:
    return (EVENTS_DIR / "purchases" / platform / fixture).read_bytes()


S = "stripe_"
STORIES = {
    "stripe-payment-checkout-partial-refund": Story("stripe", BUYER, [
        (S + "payment_intent_succeeded_payment_mode.json", []),
        (S + "checkout_session_completed_payment.json", [paid(1735725060, 4900, "EUR")]),
        (S + "charge_refunded_payment_mode_partial.json", [refunded(1736000100, 1000, "EUR")]),
    ], {"stripe:in_1PAY1_postpay": (4900, 1000, "EUR")}),
    "stripe-dispute-lost": Story("stripe", BUYER, [
        (S + "checkout_session_completed_payment.json", [paid(1735725060, 4900, "EUR")]),
        (S + "charge_dispute_created.json", []),
        (S + "charge_dispute_funds_withdrawn.json", []),
        (S + "charge_dispute_closed_lost.json", [refunded(1737100000, 4900, "EUR")]),
    ], {"stripe:in_1PAY1_postpay": (4900, 4900, "EUR")}),
    "stripe-dispute-won": Story("stripe", BUYER, [
        (S + "checkout_session_completed_payment.json", [paid(1735725060, 4900, "EUR")]),
        (S + "charge_dispute_created.json", []),
        (S + "charge_dispute_funds_withdrawn.json", []),
        (S + "charge_dispute_funds_reinstated.json", []),
        (S + "charge_dispute_closed_won.json", []),
    ], {"stripe:in_1PAY1_postpay": (4900, 0, "EUR")}),
    "stripe-delayed-payment": Story("stripe", BUYER, [
        (S + "checkout_session_completed_payment_unpaid.json", []),
        (S + "checkout_session_async_payment_succeeded.json", [paid(1735900000, 4900, "EUR")]),
    ], {"stripe:pi_3PAY2": (4900, 0, "EUR")}),
    "stripe-subscription-pre-basil": Story("stripe", BUYER, [
        (S + "checkout_session_completed_subscription_pre_basil.json",
         [paid(1735725070, 1900, "USD")]),
        (S + "invoice_paid_pre_basil.json", []),
        (S + "invoice_payment_succeeded_pre_basil.json", []),
        (S + "payment_intent_succeeded_pre_basil.json", []),
        (S + "charge_succeeded_pre_basil.json", []),
        (S + "invoice_paid_pre_basil_trial_zero.json", []),
        (S + "charge_refunded_pre_basil.json", [refunded(1736000000, 1900, "USD")]),
    ], {"stripe:in_1SUB1": (1900, 1900, "USD")}),
    "stripe-subscription-basil": Story("stripe", BUYER, [
        (S + "invoice_paid_basil.json", [paid(1748424117, 1900, "USD")]),
        (S + "checkout_session_completed_subscription_basil.json", []),
        (S + "invoice_payment_succeeded_basil.json", []),
        (S + "invoice_payment_paid_basil.json", []),
        (S + "payment_intent_succeeded_basil.json", []),
        (S + "charge_succeeded_basil.json", []),
        (S + "refund_created.json", []),
        (S + "refund_updated.json", []),
        (S + "refund_updated_failed.json", []),
        (S + "charge_refunded_basil.json", [refunded(1749000000, 700, "USD")]),
        (S + "invoice_paid_basil_renewal.json", [paid(1748424117, 1900, "USD")]),
    ], {"stripe:in_1SUB2": (1900, 700, "USD"), "stripe:in_1SUB2b": (1900, 0, "USD")}),
    "shopify-order-life": Story("shopify", BUYER, [
        ("shopify_orders_create_pending.json", []),
        ("shopify_orders_create.json", [paid("2025-01-15T10:22:30-05:00", 5900, "EUR")]),
        ("shopify_orders_paid.json", []),
        ("shopify_orders_updated.json", []),
        ("shopify_refunds_create.json", [refunded("2025-01-20T09:00:00-05:00", 2000, "EUR")]),
        ("shopify_refunds_create_no_money.json", []),
        ("shopify_orders_cancelled.json", []),
    ], {"shopify:5950032576610": (5900, 2000, "EUR")}),
    "woocommerce-order-life": Story("woocommerce", "john.doe@example.com", [
        ("woocommerce_order_created_pending.json", []),
        ("woocommerce_order_updated_on-hold.json", []),
        ("woocommerce_order_created_processing.json",
         [paid("2025-01-15T19:28:08+00:00", 2935, "USD")]),
        ("woocommerce_order_updated_completed.json", []),
        ("woocommerce_order_updated_completed_partly_refunded.json",
         [refunded("2025-01-17T13:00:00+00:00", 500, "USD")]),
        ("woocommerce_order_updated_refunded.json",
         [refunded("2025-01-18T13:00:00+00:00", 2435, "USD")]),
        ("woocommerce_order_updated_trash.json", []),
        ("woocommerce_order_deleted.json", []),
    ], {"woocommerce:727": (2935, 2935, "USD")}),
    "woocommerce-completed-date-paid-null": Story("woocommerce", "joao.silva@example.com", [
        ("woocommerce_order_updated_completed_date_paid_null.json", [
            paid("2017-03-21T19:54:51+00:00", 3900, "USD"),
            refunded("2017-03-21T19:54:51+00:00", 1000, "USD"),
            refunded("2017-03-21T19:54:51+00:00", 900, "USD")]),
    ], {"woocommerce:723": (3900, 1900, "USD")}),
}


def deliver(client: Any, platform: str, fixture: str) -> Any:
    raw = body(platform, fixture)
    answer = send(client, platform, raw, signed(platform, raw, topic=topic_of(platform, fixture)))
    assert answer.status_code == 200, (fixture, answer.get_json())
    return answer


def entries(app: Container, email: str) -> dict[str, Entry]:
    return {h.entry_id: (h.kind, h.at, (h.event or {})["amount_minor"],
                         (h.event or {})["currency"])
            for h in app.store.history(lead_id_for(email))}


def orders(app: Container, email: str) -> dict[str, tuple[int, int, str]]:
    lead = app.store.get_lead(lead_id_for(email))
    assert lead is not None
    assert lead.orders == {}  # records of their own, never in the lead document
    return {k: (o.amount_minor or 0, o.refunded_minor, o.currency or "")
            for k, o in app.store.orders_of(lead.lead_id).items()}


@pytest.fixture
def client(app_container: Container) -> Any:
    return client_for("purchase_webhook")


@pytest.mark.parametrize("name", list(STORIES))
def test_each_event_means_what_its_source_says(client: Any, app_container: Container,
                                               name: str) -> None:
    story = STORIES[name]
    seen: dict[str, Entry] = {}
    for fixture, expected in story.steps:
        # WHEN the platform delivers the next event of the story
        deliver(client, story.platform, fixture)
        # THEN it added exactly the entries its source describes
        now = entries(app_container, story.email)
        added = sorted(v for k, v in now.items() if k not in seen)
        assert added == sorted(expected), fixture
        seen = now
    assert orders(app_container, story.email) == story.orders
    assert app_container.store.get_lead(lead_id_for(story.email)).stage == (
        "customer" if any(a > r for a, r, _ in story.orders.values()) else "lead")
    # AND a second delivery of everything changes nothing
    lead = app_container.store.get_lead(lead_id_for(story.email))
    for fixture, _ in story.steps:
        deliver(client, story.platform, fixture)
    assert app_container.store.get_lead(lead_id_for(story.email)) == lead
    assert entries(app_container, story.email) == seen


IGNORED = [
    ("shopify", "shopify_test_orders_create.json", True),
    ("shopify", "shopify_test_orders_paid.json", True),
    ("shopify", "shopify_test_orders_cancelled.json", True),
    ("shopify", "shopify_test_refunds_create.json", True),
    ("shopify", "shopify_test_refunds_create.json", False),  # the body alone says "test"
    ("shopify", "shopify_test_orders_paid.json", False),
    ("woocommerce", "woocommerce_order_updated_cancelled.json", False),
    ("woocommerce", "woocommerce_order_updated_failed.json", False),
    ("stripe", "stripe_invoice_paid_pre_basil_trial_zero.json", False),
    ("stripe", "stripe_checkout_session_completed_payment_unpaid.json", False),
]


@pytest.mark.parametrize(("platform", "fixture", "test_header"), IGNORED,
                         ids=[f"{f}-{h}" for _, f, h in IGNORED])
def test_test_notifications_and_unpaid_orders_are_acknowledged(
        client: Any, app_container: Container, platform: str, fixture: str,
        test_header: bool) -> None:
    # GIVEN a signed payload that records nothing (Shopify's test button, an unpaid order)
    raw = body(platform, fixture)
    headers = signed(platform, raw, topic=topic_of(platform, fixture))
    if test_header:
        headers["X-Shopify-Test"] = "true"
    # THEN it gets a 2xx "ignored", so the platform never disables the endpoint
    answer = send(client, platform, raw, headers)
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    assert app_container.store.list_leads() == []


def test_a_paid_woocommerce_order_with_an_empty_billing_email_is_acknowledged(
        client: Any, app_container: Container) -> None:
    # GIVEN a paid order whose billing email is empty (WooCommerce disables a webhook after
    # five failed deliveries, so a refusal would cost every later order)
    order = json.loads(body("woocommerce", "woocommerce_order_created_processing.json"))
    order["billing"]["email"] = ""
    raw = json.dumps(order).encode()
    answer = send(client, "woocommerce", raw, signed("woocommerce", raw, topic="order.created"))
    # THEN 200, ignored, nothing stored
    assert answer.status_code == 200 and answer.get_json()["ignored"] == 1
    assert app_container.store.list_leads() == []


# --- one Stripe payment, counted once, in any order, on both API shapes ---------------------
SHAPES = {
    "pre-basil": (["checkout_session_completed_subscription_pre_basil.json",
                   "invoice_paid_pre_basil.json", "invoice_payment_succeeded_pre_basil.json"],
                  ["payment_intent_succeeded_pre_basil.json", "charge_succeeded_pre_basil.json"],
                  "charge_refunded_pre_basil.json", "stripe:in_1SUB1", 1900),
    "basil": (["checkout_session_completed_subscription_basil.json", "invoice_paid_basil.json",
               "invoice_payment_succeeded_basil.json"],
              ["invoice_payment_paid_basil.json", "payment_intent_succeeded_basil.json",
               "charge_succeeded_basil.json"],
              "charge_refunded_basil.json", "stripe:in_1SUB2", 700),
}
ARRIVALS = ["checkout-first", "invoice-first", "links-first", "links-last"]


def arrival(order: str, payments: list[str], links: list[str]) -> list[str]:
    checkout, *invoices = payments
    return {"checkout-first": [checkout, *links, *invoices],
            "invoice-first": [*reversed(invoices), *links, checkout],
            "links-first": [*links, *invoices, checkout],
            "links-last": [checkout, *invoices, *links]}[order]


@pytest.mark.parametrize("order", ARRIVALS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_subscription_checkout_and_its_first_invoice_are_one_purchase(
        client: Any, app_container: Container, shape: str, order: str) -> None:
    payments, links, refund, key, refunded_minor = SHAPES[shape]
    # GIVEN checkout.session.completed, invoice.paid, invoice.payment_succeeded and the
    # payment intent / charge / invoice payment events of one payment, in some order
    for fixture in arrival(order, payments, links):
        deliver(client, "stripe", "stripe_" + fixture)
    # THEN the lead has one purchase of the first invoice's amount
    assert orders(app_container, BUYER) == {key: (1900, 0, "USD")}
    kinds = [k for k, *_ in entries(app_container, BUYER).values()]
    assert kinds == ["purchase_made"]
    # WHEN that payment is later refunded (charge.refunded names no invoice on basil)
    deliver(client, "stripe", "stripe_" + refund)
    # THEN the same order shrinks by the refund
    assert orders(app_container, BUYER) == {key: (1900, refunded_minor, "USD")}


def test_a_stripe_refund_before_its_order_is_retried_not_lost(
        client: Any, app_container: Container) -> None:
    # GIVEN a basil refund of a subscription payment arriving before anything else
    refund = body("stripe", "stripe_charge_refunded_basil.json")
    first = send(client, "stripe", refund, signed("stripe", refund))
    # THEN it is answered 503 (Stripe retries for up to three days), nothing written
    assert first.status_code == 503, first.get_json()
    assert app_container.store.list_leads() == []
    # WHEN the checkout arrives, the refund's retry still cannot know which order it is
    deliver(client, "stripe", "stripe_checkout_session_completed_subscription_basil.json")
    assert send(client, "stripe", refund, signed("stripe", refund)).status_code == 503
    # AND once invoice_payment.paid links the payment intent to the invoice, it lands there
    deliver(client, "stripe", "stripe_invoice_payment_paid_basil.json")
    deliver(client, "stripe", "stripe_charge_refunded_basil.json")
    assert orders(app_container, BUYER) == {"stripe:in_1SUB2": (1900, 700, "USD")}


def test_an_invoice_without_an_email_finds_its_buyer(client: Any,
                                                     app_container: Container) -> None:
    # GIVEN a renewal invoice whose customer_email is null, from a customer we know
    deliver(client, "stripe", "stripe_invoice_paid_basil.json")
    renewal = json.loads(body("stripe", "stripe_invoice_paid_basil_renewal.json"))
    renewal["data"]["object"]["customer_email"] = None
    raw = json.dumps(renewal).encode()
    # WHEN it arrives
    answer = send(client, "stripe", raw, signed("stripe", raw))
    # THEN the customer's earlier order names the lead: a second purchase there
    assert answer.status_code == 200 and answer.get_json()["applied"] == 1
    assert orders(app_container, BUYER) == {"stripe:in_1SUB2": (1900, 0, "USD"),
                                            "stripe:in_1SUB2b": (1900, 0, "USD")}


def test_an_invoice_without_an_email_of_an_unknown_customer_is_acknowledged(
        client: Any, app_container: Container) -> None:
    invoice = json.loads(body("stripe", "stripe_invoice_paid_basil_renewal.json"))
    invoice["data"]["object"]["customer_email"] = None
    raw = json.dumps(invoice).encode()
    answer = send(client, "stripe", raw, signed("stripe", raw))
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    assert app_container.store.list_leads() == []


def test_stripe_rotating_secrets_sign_with_several_v1(client: Any,
                                                      app_container: Container) -> None:
    # GIVEN Stripe's header while a secret rolls: two v1 signatures and a v0 to ignore
    raw = body("stripe", "stripe_checkout_session_completed_payment.json")
    fresh = signed("stripe", raw)["Stripe-Signature"]
    old = signed("stripe", raw, secret="whsec_retired")["Stripe-Signature"]
    header = f"{old},{fresh.split(',')[1]},v0=6ffbb59b2300aae63f272406069a9788598b792a"
    answer = send(client, "stripe", raw, {"Stripe-Signature": header})
    assert answer.status_code == 200 and answer.get_json()["applied"] == 1


ALL_FIXTURES = [(p, f.name) for p in ("stripe", "shopify", "woocommerce")
                for f in sorted((EVENTS_DIR / "purchases" / p).glob(f"{p}_*.json"))
                if "headers" not in f.name]
# the dispute fixture closes 11 days after it was opened, so after its payment: an order
# event for that payment can no longer come, and it is acknowledged as unmatched
RETRY_LATER = {"stripe_charge_refunded_basil.json", "stripe_charge_refunded_pre_basil.json",
               "stripe_charge_refunded_payment_mode_partial.json"}


@pytest.mark.parametrize(("platform", "fixture"), ALL_FIXTURES, ids=[f for _, f in ALL_FIXTURES])
def test_no_documented_payload_is_refused_even_alone(client: Any, app_container: Container,
                                                     platform: str, fixture: str) -> None:
    # GIVEN any documented payload, signed, arriving first (nothing else known yet)
    raw = body(platform, fixture)
    answer = send(client, platform, raw, signed(platform, raw, topic=topic_of(platform, fixture)))
    # THEN it is a 2xx; only a Stripe refund of an order not seen yet asks for a retry (503,
    # which Stripe repeats for up to three days), and never a 4xx that would disable us
    expected = 503 if fixture in RETRY_LATER else 200
    assert answer.status_code == expected, answer.get_json()


def test_a_shopify_markets_order_is_counted_in_the_buyers_currency_and_refunds_match(
        client: Any, app_container: Container) -> None:
    # GIVEN a USD shop selling in EUR (Shopify Markets): the order's total_price/currency
    # are the shop's (64.00 USD), total_price_set.presentment_money what the buyer paid
    # (59.00 EUR), and Shopify's refund transactions come in the presentment currency
    # (shopify.dev, REST Transaction: "for multi-currency orders ... the presentment
    # currency"). An audit found every such refund refused as another currency's.
    order = json.loads(body("shopify", "shopify_orders_paid.json"))
    order.update(currency="USD", total_price="64.00")
    order["total_price_set"] = {"shop_money": {"amount": "64.00", "currency_code": "USD"},
                                "presentment_money": {"amount": "59.00",
                                                      "currency_code": "EUR"}}
    refund = json.loads(body("shopify", "shopify_refunds_create.json"))
    for t in refund["transactions"]:
        if t["kind"] == "refund" and t.get("currency"):
            t["amount"] = "59.00"
    # WHEN the order is paid and then fully refunded
    for raw, topic in ((json.dumps(order).encode(), "orders/paid"),
                       (json.dumps(refund).encode(), "refunds/create")):
        answer = send(client, "shopify", raw, signed("shopify", raw, topic=topic))
        assert answer.status_code == 200 and answer.get_json().get("invalid", 0) == 0, \
            answer.get_json()
    # THEN the order is the buyer's 59.00 EUR, wholly refunded, and the buyer no customer
    assert orders(app_container, BUYER) == {"shopify:5950032576610": (5900, 5900, "EUR")}
    lead = app_container.store.get_lead(lead_id_for(BUYER))
    assert lead is not None and lead.stage != "customer"


@pytest.mark.parametrize(("currency", "stripe_amount", "iso_minor"), [
    ("isk", 990000, 9900),  # Stripe: ISK stays two-decimal in its API; ISO: no decimals
    ("mga", 50000, 5000000),  # Stripe: zero-decimal; ISO: two decimals
    ("jpy", 4900, 4900), ("eur", 4900, 4900), ("kwd", 4900, 4900)])
def test_stripe_amounts_are_stored_in_iso_minor_units(
        client: Any, app_container: Container, currency: str, stripe_amount: int,
        iso_minor: int) -> None:
    # GIVEN a paid checkout in a currency whose minor unit Stripe defines (docs.stripe.com/
    # currencies: zero-decimal list, and "an ISK amount of 100 represents 1 krona"); an
    # audit found ISK and MGA orders recorded 100 times wrong
    session = json.loads(body("stripe", "stripe_checkout_session_completed_payment.json"))
    session["data"]["object"].update(currency=currency, amount_total=stripe_amount)
    raw = json.dumps(session).encode()
    # WHEN it is delivered
    answer = send(client, "stripe", raw, signed("stripe", raw))
    # THEN the order holds the same money in ISO 4217 minor units
    assert answer.status_code == 200, answer.get_json()
    assert list(orders(app_container, BUYER).values()) == [(iso_minor, 0, currency.upper())]


@pytest.mark.parametrize(("livemode", "account", "counted"), [
    (False, "acct_1ConnectedShop", False),  # a connected account's test-mode event
    (True, "acct_1ConnectedShop", True), (False, None, True)])  # live; the account's own
def test_a_connected_accounts_test_mode_event_is_not_a_purchase(
        client: Any, app_container: Container, livemode: bool, account: str | None,
        counted: bool) -> None:
    # GIVEN a paid checkout as a Connect platform's production endpoint receives it: Stripe
    # sends it the connected accounts' test-mode events too ("we recommend that you check
    # the livemode value", docs.stripe.com/connect/webhooks; found by an audit)
    session = json.loads(body("stripe", "stripe_checkout_session_completed_payment.json"))
    session["livemode"] = session["data"]["object"]["livemode"] = livemode
    if account:
        session["account"] = account
    raw = json.dumps(session).encode()
    # WHEN it is delivered
    answer = send(client, "stripe", raw, signed("stripe", raw))
    # THEN only live events, and test events of the account's own endpoint (whose secret
    # the operator chose), are purchases; the others are acknowledged
    assert answer.status_code == 200
    assert (app_container.store.get_lead(lead_id_for(BUYER)) is not None) is counted
    # AND a staging platform that wants them sets LEADSCORE_STRIPE_CONNECT_TEST_MODE
    from leadscore.providers import stripe

    assert len(stripe.parse(raw, connect_test_mode=True)) == 1
