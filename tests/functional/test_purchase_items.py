"""Each item of a signed purchase delivery stands on its own: one we can never use (a value
out of range, a date in the future) is acknowledged and writes nothing, the others count."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import EVENTS_DIR, NOW

from functional.conftest import SENDGRID, client_for
from functional.test_purchase_webhook import body_of, send, signed
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for

NOW_TS = int(NOW.timestamp())
INVALID = EVENTS_DIR / "purchases" / "invalid"


@pytest.fixture
def client(app_container: Container) -> Any:
    return client_for("purchase_webhook")


def invalid(name: str) -> bytes:
    return (INVALID / name).read_bytes()


def totals(app: Container, email: str) -> dict[str, tuple[int, int, int]]:
    lead = app.store.get_lead(lead_id_for(email))
    assert lead is not None, email
    return {c: (t.count, t.paid_minor, t.refunded_minor)
            for c, t in lead.purchase_totals.items()}


@pytest.mark.parametrize("name", ["stripe_invoice_paid_amount_out_of_range.json",
                                  "stripe_invoice_paid_invalid_email.json",
                                  "stripe_invoice_paid_id_too_long.json"])
def test_a_signed_stripe_invoice_out_of_range_is_acknowledged_and_writes_nothing(
        client: Any, app_container: Container, name: str,
        caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a signed invoice.paid whose amount, id or buyer address no event can carry
    body = invalid(name)
    # WHEN Stripe delivers it (before: a pydantic error, 500 on every retry for three days)
    answer = send(client, "stripe", body, signed("stripe", body))
    # THEN it is acknowledged as invalid, nothing is written, no address reaches the log
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "ignored"
    assert answer.get_json()["invalid"] == 1
    assert app_container.store.list_leads() == []
    assert app_container.store.order_alias("stripe:cus_Rbuyer002") is None
    assert "a@b" not in caplog.text and "Traceback" not in caplog.text
    assert "purchase report ignored" in caplog.text


def test_an_invalid_invoice_does_not_repoint_its_customer_to_a_lost_order(
        client: Any, app_container: Container) -> None:
    # GIVEN a paid invoice of customer cus_Rbuyer002, then one of the same customer whose
    # address is invalid (before: its aliases were written, then the event failed)
    good = body_of("stripe/stripe_invoice_paid_basil.json")
    assert send(client, "stripe", good, signed("stripe", good)).status_code == 200
    bad = invalid("stripe_invoice_paid_invalid_email.json")
    assert send(client, "stripe", bad, signed("stripe", bad)).get_json()["invalid"] == 1
    # WHEN the customer's next invoice names no address
    nameless = invalid("stripe_invoice_paid_no_email.json")
    answer = send(client, "stripe", nameless, signed("stripe", nameless))
    # THEN it still finds the buyer through the customer id and counts
    assert answer.get_json()["applied"] == 1, answer.get_json()
    assert totals(app_container, "buyer@example.com") == {"USD": (2, 3800, 0)}


def test_a_woocommerce_order_with_one_bad_refund_keeps_the_order_and_the_good_refund(
        client: Any, app_container: Container) -> None:
    # GIVEN a signed order update: paid 29.35, a refund of 5.00 and one of -1e20
    body = invalid("woocommerce_order_updated_one_bad_refund.json")
    # WHEN it is delivered (before: 500, the paid order lost with the bad refund)
    answer = send(client, "woocommerce", body,
                  signed("woocommerce", body, topic="order.updated"))
    # THEN the order and its valid refund count; the bad refund is acknowledged as invalid
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["applied"] == 2 and answer.get_json()["invalid"] == 1
    assert totals(app_container, "john.doe@example.com") == {"USD": (1, 2935, 500)}


def _generic(**change: Any) -> bytes:
    data = json.loads(body_of("generic_purchase.json"))
    data.update(change)
    return json.dumps(data).encode()


def test_a_future_dated_generic_purchase_is_acknowledged_not_refused(
        client: Any, app_container: Container) -> None:
    # GIVEN a signed generic purchase dated three days ahead (a sender's clock is wrong)
    body = _generic(occurred_at="2026-11-25T12:00:00Z")
    # WHEN it is delivered (before: 422, which the sender retries, then disables us)
    answer = send(client, "generic", body, signed("generic", body))
    # THEN it is acknowledged as "future" and writes nothing
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "ignored" and answer.get_json()["future"] == 1
    assert app_container.store.list_leads() == []


def test_one_future_item_of_a_sendgrid_batch_leaves_the_rest_applied(
        app_container: Container) -> None:
    # GIVEN the realistic SendGrid batch with its spam report dated three days ahead
    items = json.loads((EVENTS_DIR / "email" / "sendgrid_batch.json").read_bytes())
    assert items[7]["event"] == "spamreport"
    items[7]["timestamp"] = NOW_TS + 3 * 86400
    body = json.dumps(items).encode()
    # WHEN SendGrid delivers it (before: 422 for the whole batch)
    answer = client_for("email_webhook").post(
        "/sendgrid", data=body, headers=SENDGRID.headers(body, NOW_TS),
        content_type="application/json")
    # THEN the other items are applied and the future one is named in the answer
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["ignored"]["future"] == 1
    assert answer.get_json()["applied"] == 7
    assert app_container.store.get_lead(
        lead_id_for("priya.shah@fabrikam-logistics.com")) is not None
    assert app_container.store.get_lead(lead_id_for("annoyed.reader@wingtip-travel.com")) is None


def test_our_own_api_still_refuses_a_future_event(app_container: Container) -> None:
    # GIVEN an /ingest event dated three days ahead: our API tells its sender (documented)
    event = json.loads((EVENTS_DIR / "ingest_single_activity.json").read_bytes())
    event["occurred_at"] = "2026-11-25T12:00:00Z"
    answer = client_for("ingest").post("/", json=event,
                                       headers={"Authorization": "Bearer current-token-123"})
    # THEN it stays a 422
    assert answer.status_code == 422, answer.get_json()


@pytest.mark.parametrize("bad", [{"email": "not-an-address"}, {"link": 5}],
                         ids=["invalid-address", "link-not-a-string"])
def test_one_bad_brevo_item_leaves_the_rest_of_the_batch_applied(
        app_container: Container, bad: dict[str, Any]) -> None:
    # GIVEN Brevo's realistic batch with one more item whose address or link is wrong
    items = json.loads((EVENTS_DIR / "email" / "brevo_batch.json").read_bytes())
    assert items[4]["event"] == "click"
    items.append({**items[4], **bad})
    body = json.dumps(items).encode()
    # WHEN it is delivered (before: the whole batch acknowledged as invalid, nothing applied)
    answer = client_for("email_webhook").post(
        "/brevo", data=body, headers={"Authorization": "Bearer brevo-token-9f3"},
        content_type="application/json")
    # THEN the valid items count and the bad one is named as invalid
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "ok" and answer.get_json()["applied"] == 7
    assert any("invalid" in name for name in answer.get_json()["ignored"])
    assert app_container.store.get_lead(lead_id_for("hugo.martin@fourth-coffee.fr")) is not None


def test_a_signed_shopify_body_nested_too_deep_is_a_400(client: Any,
                                                        app_container: Container) -> None:
    # GIVEN a correctly signed Shopify body nested 100,000 deep (before: RecursionError in
    # the test-notification check, a 500 Shopify retries)
    body = b"[" * 100_000 + b"]" * 100_000
    answer = send(client, "shopify", body, signed("shopify", body, topic="orders/paid"))
    # THEN it is refused as bad JSON, nothing written
    assert answer.status_code == 400, answer.get_json()
    assert app_container.store.list_leads() == []


def _refund(**change: Any) -> bytes:
    data = json.loads(body_of("generic_refund.json"))
    data.update(change)
    return json.dumps(data).encode()


def test_the_same_refund_id_on_two_orders_refunds_both(client: Any,
                                                       app_container: Container) -> None:
    # GIVEN two paid orders of the same buyer (generic_purchase.json, order WEB-88213 and a
    # second one), and a shop whose refund ids restart on every order ("RF-5521" on both)
    for body in (_generic(), _generic(id="evt-2", order_id="WEB-88214")):
        assert send(client, "generic", body, signed("generic", body)).status_code == 200
    first = _refund(amount="100.00")
    second = _refund(id="evt-4", order_id="WEB-88214", amount="100.00")
    # WHEN each order's refund arrives (before: the second was taken for a duplicate)
    for body in (first, second):
        answer = send(client, "generic", body, signed("generic", body))
        assert answer.get_json()["applied"] == 1, answer.get_json()
    # THEN both orders are refunded
    assert totals(app_container, "kim.nguyen@example.net") == {"USD": (2, 250000, 20000)}


def test_a_refund_in_another_currency_is_acknowledged_as_invalid(
        client: Any, app_container: Container, caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a paid order of 1250.00 USD
    body = _generic()
    assert send(client, "generic", body, signed("generic", body)).status_code == 200
    # WHEN a refund of 125000 JPY arrives for it (before: it refunded the order in full)
    refund = _refund(amount="125000", currency="JPY")
    answer = send(client, "generic", refund, signed("generic", refund))
    # THEN it is acknowledged as invalid, the order still counts, no address is logged
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["invalid"] == 1 and answer.get_json()["applied"] == 0
    assert totals(app_container, "kim.nguyen@example.net") == {"USD": (1, 125000, 0)}
    assert "kim.nguyen" not in caplog.text and "another currency" in caplog.text


def test_a_refund_recorded_under_the_old_key_does_not_count_twice(
        client: Any, app_container: Container) -> None:
    # GIVEN an order and its refund recorded before refunds were keyed by order (the ledger
    # holds "refund:RF-5521:125000", written here the way the old release wrote it)
    from leadscore.domain.events import PurchaseRefunded
    from leadscore.service.ingest import ingest

    body = _generic()
    assert send(client, "generic", body, signed("generic", body)).status_code == 200
    old = PurchaseRefunded(email="kim.nguyen@example.net", source="generic",
                           idempotency_key="refund:RF-5521:125000",
                           occurred_at=NOW.replace(hour=9), order_id="WEB-88213",
                           refund_id="RF-5521", amount_minor=125000, currency="USD")
    ingest(app_container.store, app_container.rules, [old], NOW)
    # WHEN the shop redelivers that refund after the upgrade (its new key is not in the ledger)
    refund = _refund()
    assert send(client, "generic", refund, signed("generic", refund)).status_code == 200
    # THEN the order is refunded once: an order keeps one amount per refund id
    assert totals(app_container, "kim.nguyen@example.net") == {}
    lead = app_container.store.get_lead(lead_id_for("kim.nguyen@example.net"))
    order = app_container.store.orders_of(lead.lead_id)["generic:WEB-88213"]
    assert (order.amount_minor, order.refunds) == (125000, {"RF-5521": 125000})
    # AND it is taken for the duplicate it is: no second history line, no second count
    assert lead.counters.get("purchase_refunded") == 1
    assert [e.kind for e in app_container.store.history(lead.lead_id)].count(
        "purchase_refunded") == 1


def test_a_stripe_refund_of_an_erased_leads_order_is_acknowledged_not_a_503(
        client: Any, app_container: Container) -> None:
    from leadscore.service.erasure import erase_address

    # GIVEN an invoice paid by buyer@example.com (charge ch_3SUB1, payment pi_3SUB1), then
    # the buyer erased (their order index and aliases go with them)
    paid = body_of("stripe/stripe_invoice_paid_pre_basil.json")
    assert send(client, "stripe", paid, signed("stripe", paid)).status_code == 200
    erase_address(app_container.store, "buyer@example.com", NOW)
    # WHEN Stripe delivers the charge's refund (before: 503 on every retry for three days)
    refund = body_of("stripe/stripe_charge_refunded_pre_basil.json")
    answers = [send(client, "stripe", refund, signed("stripe", refund)) for _ in range(2)]
    # THEN each delivery is acknowledged as a refund of an erased lead's order; nothing is back
    for answer in answers:
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["erased"] == 1 and answer.get_json()["applied"] == 0
    assert app_container.store.list_leads() == []
    # AND the marker is a keyed hash: no id of the order is readable in the alias index
    assert app_container.store.order_alias("stripe:ch_3SUB1") is None


def test_a_basil_refund_of_an_erased_leads_invoice_is_acknowledged_not_a_503(
        client: Any, app_container: Container) -> None:
    from leadscore.service.erasure import erase_address

    # GIVEN a "basil" invoice paid by buyer@example.com (no payment ids on the invoice) and
    # Stripe's separate invoice_payment.paid that links payment pi_3SUB2 to it, then the
    # buyer erased (review of the hooks merge: the link has no lead, so it outlives erasure)
    for name in ("stripe/stripe_invoice_paid_basil.json",
                 "stripe/stripe_invoice_payment_paid_basil.json"):
        body = body_of(name)
        assert send(client, "stripe", body, signed("stripe", body)).status_code == 200
    erase_address(app_container.store, "buyer@example.com", NOW)
    # WHEN Stripe delivers the charge's refund, which names the payment and the charge only
    refund = body_of("stripe/stripe_charge_refunded_basil.json")
    answer = send(client, "stripe", refund, signed("stripe", refund))
    # THEN it is acknowledged as a refund of an erased lead's order, not 503 for three days
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["erased"] == 1 and answer.get_json()["applied"] == 0
    assert app_container.store.list_leads() == []


def test_erased_orders_markers_expire_with_the_tombstone(
        client: Any, app_container: Container) -> None:
    from leadscore.service.erasure import erase_address
    from leadscore.service.purchases import ERASED, erased_marker
    from leadscore.store.port import TOMBSTONE_KEPT

    # GIVEN an invoice paid by buyer@example.com (tests/events/purchases/stripe/
    # stripe_invoice_paid_pre_basil.json: invoice in_1SUB1, charge ch_3SUB1)
    paid = body_of("stripe/stripe_invoice_paid_pre_basil.json")
    assert send(client, "stripe", paid, signed("stripe", paid)).status_code == 200
    # WHEN the buyer is erased
    erase_address(app_container.store, "buyer@example.com", NOW)
    store: Any = app_container.store
    # THEN the order and its charge are marked as erased
    marked = [erased_marker(k) for k in ("stripe:in_1SUB1", "stripe:ch_3SUB1")]
    assert [store.order_alias(m) for m in marked] == [ERASED, ERASED]
    if type(store).__name__ == "FirestoreStore":
        # AND on Firestore every marker expires when the tombstone does (review of the hooks
        # merge: markers had no expires_at, so the TTL policy never removed them)
        stones = [d.to_dict() for d in store._erased.stream()]
        assert stones and {s["expires_at"] for s in stones} == {NOW + TOMBSTONE_KEPT}
        markers = [d.to_dict() for d in store._aliases.stream()
                   if d.to_dict()["order_key"] == ERASED]
        assert len(markers) >= 2
        assert all(m.get("expires_at") == NOW + TOMBSTONE_KEPT for m in markers), markers
    else:
        # AND on SQLite, which keeps tombstones for good, the markers stay beside it
        assert store.tombstone(lead_id_for("buyer@example.com")) is not None


def test_a_stripe_refund_of_an_order_never_seen_still_asks_for_a_retry(
        client: Any, app_container: Container) -> None:
    # GIVEN no order at all WHEN a charge's refund arrives THEN 503, Stripe retries (the
    # payment or the event linking it may be on its way): unchanged by erasure markers
    refund = body_of("stripe/stripe_charge_refunded_pre_basil.json")
    assert send(client, "stripe", refund, signed("stripe", refund)).status_code == 503


def _refund_days_after_charge(days: float) -> bytes:
    """The pre-basil refund (tests/events/purchases/stripe/stripe_charge_refunded_pre_basil.json,
    charge ch_3SUB1 of invoice in_1SUB1) made `days` after its charge was created."""
    refund = json.loads(body_of("stripe/stripe_charge_refunded_pre_basil.json"))
    refund["created"] = refund["data"]["object"]["created"] + int(days * 86400)
    return json.dumps(refund).encode()


def test_a_refund_weeks_after_a_payment_no_order_named_is_acknowledged_not_a_503(
        client: Any, app_container: Container) -> None:
    # GIVEN no order for the charge (a PaymentIntent of Elements or Terminal, or a payment
    # from before the endpoint existed) WHEN its refund comes 30 days after the charge
    refund = _refund_days_after_charge(30)
    answers = [send(client, "stripe", refund, signed("stripe", refund)) for _ in range(2)]
    # THEN it is acknowledged as an unmatched refund (the order's event, which Stripe retries
    # for three days, can no longer come), and nothing is written: no made-up order
    for answer in answers:
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["unmatched_refunds"] == 1
    assert app_container.store.list_leads() == []
    # AND one made within the week still asks for a retry (its order may be on its way)
    early = _refund_days_after_charge(6)
    assert send(client, "stripe", early, signed("stripe", early)).status_code == 503


def test_a_lost_dispute_of_a_payment_no_order_named_is_acknowledged_not_a_503(
        client: Any, app_container: Container) -> None:
    # GIVEN no order for the disputed payment, and the dispute lost 11 days after it was
    # opened (tests/events/purchases/stripe/stripe_charge_dispute_closed_lost.json), so
    # more than a week after the payment
    late = body_of("stripe/stripe_charge_dispute_closed_lost.json")
    answer = send(client, "stripe", late, signed("stripe", late))
    # THEN it is acknowledged as unmatched (Stripe would retry a 503 for three days, then
    # warn of and disable the endpoint), and nothing is written
    assert answer.status_code == 200 and answer.get_json()["unmatched_refunds"] == 1
    assert app_container.store.list_leads() == []
    # AND a dispute lost two days after it was opened still asks for a retry
    early = json.loads(late)
    early["created"] = early["data"]["object"]["created"] + 2 * 86400
    raw = json.dumps(early).encode()
    assert send(client, "stripe", raw, signed("stripe", raw)).status_code == 503


def test_a_refund_weeks_after_its_known_order_still_lowers_it(
        client: Any, app_container: Container) -> None:
    # GIVEN the invoice paid (in_1SUB1, charge ch_3SUB1)
    paid = body_of("stripe/stripe_invoice_paid_pre_basil.json")
    assert send(client, "stripe", paid, signed("stripe", paid)).status_code == 200
    # WHEN its charge is refunded 30 days later
    refund = _refund_days_after_charge(30)
    answer = send(client, "stripe", refund, signed("stripe", refund))
    # THEN the order's lead gets the refund
    assert answer.status_code == 200 and answer.get_json()["applied"] == 1, answer.get_json()


def test_an_edited_amount_is_a_duplicate_and_a_refund_lowers_the_order(
        client: Any, app_container: Container) -> None:
    # GIVEN a paid order of 1250.00 USD (documented: the first paid report fixes the amount)
    body = _generic()
    assert send(client, "generic", body, signed("generic", body)).status_code == 200
    # WHEN the shop reports it again, edited to 5000.00, a day later
    edit = _generic(id="evt-9", amount="5000.00", occurred_at="2026-11-22T09:00:00Z")
    answer = send(client, "generic", edit, signed("generic", edit))
    # THEN it is a duplicate; a refund is the way to lower the order
    assert answer.get_json()["duplicates"] == 1, answer.get_json()
    refund = _refund(amount="250.00")
    assert send(client, "generic", refund, signed("generic", refund)).status_code == 200
    assert totals(app_container, "kim.nguyen@example.net") == {"USD": (1, 125000, 25000)}
