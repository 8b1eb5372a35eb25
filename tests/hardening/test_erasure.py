"""Erasure sticks (issue 21): late redeliveries never bring a lead back, a new lead starts
only with consent, and an erasure racing writers leaves nothing behind. On memory, SQLite
and the Firestore emulator."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from builders import event, form, opened
from conftest import NOW

from hardening.figures import add
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.erasure import erase_address
from leadscore.service.ingest import ingest

EMAIL = "gone@example.com"
BEFORE = NOW - timedelta(hours=2)
ERASED = NOW - timedelta(hours=1)
AFTER = NOW - timedelta(minutes=10)


def purchase(key: str, at: Any) -> Any:
    return event("purchase_made", EMAIL, key, at, source="shop", order_id=key,
                 amount_minor=1000, currency="EUR")


def everything(at: Any) -> list[Any]:
    return [form(EMAIL, "f1", at), opened(EMAIL, "o1", at), opened(EMAIL, "o2", at),
            event("email_clicked", EMAIL, "c1", at, source="esp"), purchase("p1", at)]


def nothing_left(store: Any) -> bool:
    lead_id = lead_id_for(EMAIL)
    return store.get_lead(lead_id) is None and store.history(lead_id) == []


def test_late_redeliveries_after_an_erasure_are_acknowledged_and_dropped(
        store: Any, rules: Rules) -> None:
    # GIVEN a lead with a form, opens, a click and a purchase, then erased
    ingest(store, rules, everything(BEFORE), BEFORE)
    assert erase_address(store, EMAIL, ERASED)
    # WHEN every event is delivered again, and more events dated before the erasure arrive
    again = ingest(store, rules, everything(BEFORE), NOW)
    older = ingest(store, rules, [opened(EMAIL, "o9", ERASED), form(EMAIL, "f9", BEFORE)],
                   NOW)
    # THEN nothing is written, and the answers count them as erased (not duplicates)
    assert nothing_left(store)
    assert (again.applied, again.erased, older.applied, older.erased) == (0, 5, 0, 2)


def test_after_an_erasure_only_a_new_form_submission_starts_a_new_lead(
        store: Any, rules: Rules) -> None:
    ingest(store, rules, everything(BEFORE), BEFORE)
    erase_address(store, EMAIL, ERASED)
    # WHEN engagement and a purchase dated after the erasure arrive first
    ingest(store, rules, [opened(EMAIL, "o3", AFTER), purchase("p3", AFTER)], NOW)
    # THEN they start no lead (no lawful basis: the person asked to be forgotten)
    assert nothing_left(store)
    # WHEN the person submits a form again (consent), later events count on the new lead
    ingest(store, rules, [form(EMAIL, "f3", AFTER)], NOW)
    ingest(store, rules, [opened(EMAIL, "o4", NOW), opened(EMAIL, "o5", BEFORE)], NOW)
    lead = store.get_lead(lead_id_for(EMAIL))
    assert lead is not None and lead.counters == {"form_submitted": 1, "email_opened": 1}
    assert len(store.history(lead_id_for(EMAIL))) == 2


def test_an_erasure_racing_writers_leaves_nothing_behind(store: Any, rules: Rules) -> None:
    # GIVEN writers delivering forms, opens and clicks (dated before the erasure) for one
    # address, blind and transactional paths alike
    for round_ in range(3):
        start = threading.Barrier(4)
        errors: list[BaseException] = []

        def write(worker: int, round_: int = round_, start: Any = start,
                  errors: list[BaseException] = errors) -> None:
            start.wait()
            for i in range(6):
                batch = [opened(EMAIL, f"{round_}-{worker}-o{i}", BEFORE),
                         event("email_clicked", EMAIL, f"{round_}-{worker}-c{i}", BEFORE,
                               source="esp")]
                if i % 3 == 0:
                    batch = [form(EMAIL, f"{round_}-{worker}-f{i}", BEFORE)]
                try:
                    ingest(store, rules, batch, NOW)
                except Exception as exc:  # noqa: BLE001 - a 503 is allowed, not a leftover
                    if type(exc).__name__ != "TransientError":
                        errors.append(exc)

        def erase(start: Any = start) -> None:
            start.wait()
            erase_address(store, EMAIL, ERASED)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
        threads.append(threading.Thread(target=erase))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        # THEN no lead, no history document, nothing half-written
        assert not errors, errors
        assert nothing_left(store), f"round {round_}: something survived the erasure"


def test_providers_redelivering_after_an_erasure_resurrect_nothing(app_container: Any) -> None:
    """SendGrid, Mailgun, Stripe and Typeform send the same signed requests again after
    every lead they created was erased through the API: 200s, and no lead comes back."""
    import base64
    import hashlib
    import hmac as hmac_

    from functional.conftest import client_for
    from functional.test_email_webhook import fixture, mailgun_body, sendgrid_post
    from functional.test_purchase_webhook import body_of, signed
    from pydantic import SecretStr

    app_container.settings = app_container.settings.model_copy(
        update={"typeform_secret": SecretStr("tf-erasure")})
    email, purchase_, forms = (client_for(n) for n in
                               ("email_webhook", "purchase_webhook", "form_submission"))
    sendgrid, mailgun = fixture("sendgrid_batch.json"), mailgun_body("mailgun_opened.json")
    stripe = body_of("stripe_checkout_completed.json")
    typeform = (Path(__file__).parents[1] / "events" / "forms" /
                "typeform_response.json").read_bytes()
    digest = hmac_.new(b"tf-erasure", typeform, hashlib.sha256).digest()
    tf_headers = {"Typeform-Signature": "sha256=" + base64.b64encode(digest).decode()}

    def deliver() -> list[int]:
        return [sendgrid_post(email, sendgrid).status_code,
                email.post("/mailgun", data=mailgun, content_type="application/json").status_code,
                purchase_.post("/stripe", data=stripe, headers=signed("stripe", stripe),
                               content_type="application/json").status_code,
                forms.post("/typeform", data=typeform, headers=tf_headers,
                           content_type="application/json").status_code]

    # GIVEN leads created by each provider, then all erased through the leads API
    assert deliver() == [200] * 4
    leads = app_container.store.list_leads(limit=1000)
    assert len(leads) >= 4
    api = client_for("leads_api")
    for lead in leads:
        answer = api.delete(f"/leads/{lead.lead_id}",
                            headers={"Authorization": "Bearer current-token-123"})
        assert answer.status_code == 200
    # WHEN every provider delivers the same requests again (their retries, days later)
    statuses = deliver()
    resurrected = app_container.store.list_leads(limit=1000)
    print(f"\nresurrected leads after redelivery: {len(resurrected)}")
    add("resurrected leads", len(resurrected))
    # THEN they are acknowledged, and nothing comes back
    assert statuses == [200] * 4
    assert resurrected == []
    assert all(app_container.store.history(x.lead_id) == [] for x in leads)
