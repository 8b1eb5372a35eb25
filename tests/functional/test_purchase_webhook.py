"""POST /purchase_webhook/<platform>: signed purchase reports become one purchase per order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import EVENTS_DIR, NOW
from signatures import base64_hmac, stripe_style

from functional.conftest import SECRETS, client_for
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for

NOW_TS = int(NOW.timestamp())


def body_of(name: str) -> bytes:
    return (EVENTS_DIR / "purchases" / name).read_bytes()


def signed(platform: str, body: bytes, secret: str | None = None, timestamp: int = NOW_TS,
           topic: str = "") -> dict[str, str]:
    key = secret or SECRETS[platform]
    if platform == "stripe":
        return {"Stripe-Signature": stripe_style(body, key, timestamp)}
    if platform == "generic":
        return {"Leadscore-Signature": stripe_style(body, key, timestamp)}
    if platform == "shopify":
        return {"X-Shopify-Hmac-Sha256": base64_hmac(body, key), "X-Shopify-Topic": topic,
                "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
    return {"X-WC-Webhook-Signature": base64_hmac(body, key), "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Delivery-ID": "7f1e0a"}


@pytest.fixture
def client(app_container: Container) -> Any:
    return client_for("purchase_webhook")


def send(client: Any, platform: str, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/{platform}", data=body, headers=headers,
                       content_type="application/json")


def lead_of(container: Container, email: str) -> Any:
    return container.store.get_lead(lead_id_for(email))


def purchases(container: Container, email: str) -> list[tuple[int, int, str]]:
    lead = lead_of(container, email)
    return sorted((o.amount_minor, o.refunded_minor, o.currency)
                  for o in container.store.orders_of(lead.lead_id).values())


# --- happy paths, one per platform ---------------------------------------------------------
CASES = [
    ("stripe", "stripe_checkout_completed.json", "", "lucia.fernandez@example-retail.es",
     (14900, 0, "EUR")),
    ("stripe", "stripe_invoice_paid.json", "", "ops@northwind-saas.com", (4900, 0, "USD")),
    ("shopify", "shopify_order_paid.json", "orders/paid", "tom.harris@harris-bakery.co.uk",
     (8640, 0, "GBP")),
    ("woocommerce", "woocommerce_order_processing.json", "order.created",
     "renee@cafe-mueller.de", (12900, 0, "EUR")),
    ("generic", "generic_purchase.json", "", "kim.nguyen@example.net", (125000, 0, "USD")),
]


@pytest.mark.parametrize(("platform", "fixture", "topic", "email", "order"), CASES,
                         ids=[c[1] for c in CASES])
def test_a_paid_order_makes_a_customer(client: Any, app_container: Container, platform: str,
                                       fixture: str, topic: str, email: str,
                                       order: tuple[int, int, str]) -> None:
    # GIVEN a signed paid-order webhook
    body = body_of(fixture)
    # WHEN the platform delivers it
    answer = send(client, platform, body, signed(platform, body, topic=topic))
    # THEN one purchase is recorded and the lead is a customer
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["applied"] == 1
    assert purchases(app_container, email) == [order]
    lead = lead_of(app_container, email)
    assert lead.stage == "customer" and lead.last_purchase_at is not None
    kinds = [h.kind for h in app_container.store.history(lead.lead_id)]
    assert kinds == ["purchase_made"]


def test_one_order_reported_four_times_is_one_purchase(client: Any,
                                                       app_container: Container) -> None:
    # GIVEN Shopify's orders/create (paid) and orders/paid, each retried
    body = body_of("shopify_order_paid.json")
    for topic in ("orders/create", "orders/paid", "orders/create", "orders/paid"):
        answer = send(client, "shopify", body, signed("shopify", body, topic=topic))
        assert answer.status_code == 200
    # THEN one purchase with the order's total, and one history entry
    assert purchases(app_container, "tom.harris@harris-bakery.co.uk") == [(8640, 0, "GBP")]
    lead = lead_of(app_container, "tom.harris@harris-bakery.co.uk")
    assert len(app_container.store.history(lead.lead_id)) == 1


def test_stripe_partial_then_full_refund(client: Any, app_container: Container) -> None:
    email = "lucia.fernandez@example-retail.es"
    paid = body_of("stripe_checkout_completed.json")
    send(client, "stripe", paid, signed("stripe", paid))
    paid_score = lead_of(app_container, email).score
    # WHEN a partial refund (cumulative 49.00) arrives, twice
    partial = body_of("stripe_charge_refunded.json")
    for _ in range(2):
        assert send(client, "stripe", partial, signed("stripe", partial)).status_code == 200
    # THEN the order is net 100.00 and its points shrink by that share
    assert purchases(app_container, email) == [(14900, 4900, "EUR")]
    lead = lead_of(app_container, email)
    assert lead.stage == "customer" and lead.score < paid_score
    # WHEN the rest is refunded (cumulative 149.00), even delivered before the partial again
    event = json.loads(partial)
    event["id"] = "evt_full_refund"
    event["data"]["object"].update(amount_refunded=14900, refunded=True)
    full = json.dumps(event).encode()
    assert send(client, "stripe", full, signed("stripe", full)).status_code == 200
    assert send(client, "stripe", partial, signed("stripe", partial)).status_code == 200
    # THEN nothing is left, and the lead falls back to the stage its score gives
    assert purchases(app_container, email) == [(14900, 14900, "EUR")]
    assert lead_of(app_container, email).stage == "lead"


def test_a_shopify_refund_without_email_finds_its_order(client: Any,
                                                        app_container: Container) -> None:
    order = body_of("shopify_order_paid.json")
    send(client, "shopify", order, signed("shopify", order, topic="orders/paid"))
    refund = body_of("shopify_refund.json")
    answer = send(client, "shopify", refund, signed("shopify", refund, topic="refunds/create"))
    assert answer.status_code == 200 and answer.get_json()["applied"] == 1
    assert purchases(app_container, "tom.harris@harris-bakery.co.uk") == [(8640, 4320, "GBP")]


def test_a_refund_for_an_unknown_order_is_acknowledged_not_placed(
        client: Any, app_container: Container) -> None:
    refund = body_of("shopify_refund.json")
    answer = send(client, "shopify", refund, signed("shopify", refund, topic="refunds/create"))
    assert answer.status_code == 200 and answer.get_json()["unmatched_refunds"] == 1
    assert app_container.store.list_leads() == []


def test_woocommerce_refund_in_an_order_update(client: Any, app_container: Container) -> None:
    for fixture, topic in (("woocommerce_order_processing.json", "order.created"),
                           ("woocommerce_order_partly_refunded.json", "order.updated"),
                           ("woocommerce_order_partly_refunded.json", "order.updated")):
        body = body_of(fixture)
        assert send(client, "woocommerce", body,
                    signed("woocommerce", body, topic=topic)).status_code == 200
    assert purchases(app_container, "renee@cafe-mueller.de") == [(12900, 2900, "EUR")]


def test_woocommerce_signs_php_escaped_bytes(client: Any, app_container: Container) -> None:
    # GIVEN a body with PHP's escapes (\/ and \u00e9): a re-encoded body would not verify
    body = body_of("woocommerce_order_processing.json")
    assert b"\\/" in body and b"\\u00e9" in body
    headers = signed("woocommerce", body, topic="order.created")
    assert send(client, "woocommerce", body, headers).status_code == 200
    reencoded = json.dumps(json.loads(body)).encode()
    assert send(client, "woocommerce", reencoded, headers).status_code == 401


def test_woocommerce_creation_ping_is_answered_and_stores_nothing(
        client: Any, app_container: Container) -> None:
    answer = client.post("/woocommerce", data=b"webhook_id=17",
                         content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200
    assert app_container.store.list_leads() == []


@pytest.mark.parametrize(("platform", "fixture"), [
    ("stripe", "stripe_customer_created.json"), ("stripe", "stripe_checkout_unpaid.json")])
def test_unhandled_or_unpaid_events_are_accepted_and_ignored(
        client: Any, app_container: Container, platform: str, fixture: str) -> None:
    body = body_of(fixture)
    answer = send(client, platform, body, signed(platform, body))
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    assert app_container.store.list_leads() == []


# --- forged, stale and malformed requests: 4xx and nothing written --------------------------
def _tampered(body: bytes) -> bytes:
    return body.replace(b"14900", b"1", 1) if b"14900" in body else body.replace(b"0", b"1", 1)


FORGERIES = [
    ("stripe", "stripe_checkout_completed.json", "",
     lambda b: (b, signed("stripe", b, secret="whsec_wrong"))),
    ("stripe", "stripe_checkout_completed.json", "",
     lambda b: (_tampered(b), signed("stripe", b))),
    ("stripe", "stripe_checkout_completed.json", "",
     lambda b: (b, signed("stripe", b, timestamp=NOW_TS - 301))),
    ("stripe", "stripe_checkout_completed.json", "", lambda b: (b, {})),
    ("generic", "generic_purchase.json", "",
     lambda b: (b, signed("generic", b, timestamp=NOW_TS + 600))),
    ("generic", "generic_purchase.json", "", lambda b: (_tampered(b), signed("generic", b))),
    ("shopify", "shopify_order_paid.json", "orders/paid",
     lambda b: (b, signed("shopify", b, secret="nope", topic="orders/paid"))),
    ("shopify", "shopify_order_paid.json", "orders/paid",
     lambda b: (b, {"X-Shopify-Topic": "orders/paid"})),
    ("woocommerce", "woocommerce_order_processing.json", "order.created",
     lambda b: (_tampered(b), signed("woocommerce", b, topic="order.created"))),
]


@pytest.mark.parametrize(("platform", "fixture", "topic", "forge"), FORGERIES,
                         ids=["stripe-wrong-key", "stripe-tampered", "stripe-stale",
                              "stripe-missing", "generic-future", "generic-tampered",
                              "shopify-wrong-key", "shopify-missing", "woo-tampered"])
def test_forged_or_stale_signatures_are_refused(client: Any, app_container: Container,
                                                platform: str, fixture: str, topic: str,
                                                forge: Any) -> None:
    body, headers = forge(body_of(fixture))
    answer = send(client, platform, body, headers)
    assert answer.status_code == 401 and answer.get_json()["error"] == "unauthorized"
    assert app_container.store.list_leads() == []


def _generic(**change: Any) -> bytes:
    data = json.loads(body_of("generic_purchase.json"))
    data.update(change)
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


MALFORMED = [
    (_generic(amount="twelve"), "not a number"),
    (_generic(amount="12.345"), "more decimals"),
    (_generic(currency="EUX"), "not an ISO 4217"),
    (_generic(email=None), "email"),
    (_generic(email="not an address"), "email"),
    (_generic(type="refund"), "refund_id"),
    (_generic(amount=["12"], occurred_at=7), "occurred_at"),
]
MALFORMED_IDS = ["amount-word", "amount-too-precise", "currency", "no-email", "bad-email",
                 "refund-no-id", "wrong-types"]


@pytest.mark.parametrize(("body", "names"), MALFORMED, ids=MALFORMED_IDS)
def test_a_signed_purchase_we_cannot_use_is_acknowledged_naming_the_field(
        client: Any, app_container: Container, body: bytes, names: str,
        caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a correctly signed generic purchase whose fields are wrong (issue 21: a 4xx makes
    # the sender retry for days, then disable the endpoint)
    answer = send(client, "generic", body, signed("generic", body))
    # THEN it is acknowledged as ignored, the problem named, logged, and nothing written
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "ignored"
    assert names in json.dumps(answer.get_json())
    assert "webhook payload ignored" in caplog.text
    assert app_container.store.list_leads() == []


@pytest.mark.parametrize(("body", "names"), MALFORMED, ids=MALFORMED_IDS)
def test_an_unsigned_malformed_purchase_stays_refused(
        client: Any, app_container: Container, body: bytes, names: str) -> None:
    answer = send(client, "generic", body, {"Leadscore-Signature": "t=1,v1=00"})
    assert answer.status_code == 401
    assert app_container.store.list_leads() == []


def test_a_signed_body_that_is_not_json_is_400(client: Any, app_container: Container) -> None:
    # unparseable bytes are refused (the webhook module's rule), signed or not
    body = b'{"id": "x", '
    answer = send(client, "generic", body, signed("generic", body))
    assert answer.status_code == 400 and "not valid JSON" in json.dumps(answer.get_json())
    assert app_container.store.list_leads() == []


def test_a_paid_order_naming_no_buyer_we_know_is_acknowledged_not_stored(
        client: Any, app_container: Container) -> None:
    # GIVEN a signed checkout whose buyer has no address and no earlier order (issue 13: a
    # 4xx would make Stripe retry for days a payload that can never succeed)
    event = json.loads(body_of("stripe_checkout_completed.json"))
    event["data"]["object"]["customer_details"]["email"] = None
    body = json.dumps(event).encode()
    answer = send(client, "stripe", body, signed("stripe", body))
    # THEN it is acknowledged as ignored and nothing is written
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "ignored" and answer.get_json()["ignored"] == 1
    assert app_container.store.list_leads() == []


def test_an_unknown_platform_is_a_404(client: Any) -> None:
    answer = send(client, "paypal", b"{}", {})
    assert answer.status_code == 404 and "unknown platform" in answer.get_json()["message"]

