"""Every fixture of every email provider means what its source says (issue 13).

For each payload under tests/events/email/<provider>/ (its source in that folder's
SOURCES.md), delivered through the functions-framework client with a real signature:
THEN the answer is 200 (never a 4xx or 5xx for a payload from the provider's own
documentation), the lead's history holds exactly the canonical events the source says it
means (kind, recipient, time, flags), what we do not score is acknowledged as "ignored"
and named, and a second delivery changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from functional.conftest import client_for
from functional.email_senders import NOW_TS, SENDERS, deliver, fixture, fixtures
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for

LENA = "lena.fischer@example.com"
NO_SUCH = "no.such.user@example.org"
ANNOYED = "annoyed.reader@example.org"
PRICING = "https://www.example.com/pricing"


def at(when: float | str) -> datetime:
    if isinstance(when, str):  # Mailchimp's fired_at, read as UTC
        return datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return datetime.fromtimestamp(when, UTC)


@dataclass(frozen=True)
class Means:
    """What one fixture means: canonical events (type, email, time, flags) and the labels of
    what is acknowledged without scoring."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def ev(kind: str, email: str, when: float | str, **flags: Any) -> dict[str, Any]:
    return {"type": kind, "email": email, "occurred_at": at(when), **flags}


def ignored(*labels: str) -> Means:
    return Means(ignored=list(labels))


MEANING: dict[tuple[str, str], Means] = {
    # SendGrid: tests/events/email/sendgrid/SOURCES.md
    ("sendgrid", "sendgrid_processed.json"): ignored("processed"),
    ("sendgrid", "sendgrid_deferred.json"): ignored("deferred"),
    ("sendgrid", "sendgrid_delivered.json"): Means([ev("email_delivered", LENA, 1795338006)]),
    ("sendgrid", "sendgrid_bounce_bounce.json"): Means([
        ev("email_bounced", NO_SUCH, 1795338007, hard=True)]),
    ("sendgrid", "sendgrid_bounce_blocked.json"): Means([
        ev("email_bounced", "busy.inbox@example.org", 1795338008, hard=False)]),
    ("sendgrid", "sendgrid_bounce_blocked_async_no_message_id.json"): Means([
        ev("email_bounced", "late.bounce@example.org", 1795338900, hard=False)]),
    ("sendgrid", "sendgrid_dropped_bounced_address.json"): ignored("dropped"),
    ("sendgrid", "sendgrid_dropped_unsubscribed_address.json"): ignored("dropped"),
    ("sendgrid", "sendgrid_dropped_spam_reporting_address.json"): ignored("dropped"),
    ("sendgrid", "sendgrid_dropped_invalid.json"): ignored("dropped"),
    ("sendgrid", "sendgrid_dropped_spam_content.json"): ignored("dropped"),
    ("sendgrid", "sendgrid_dropped_invalid_smtpapi_header.json"): ignored("dropped"),
    ("sendgrid", "sendgrid_dropped_recipient_list_over_package_quota.json"): ignored("dropped"),
    ("sendgrid", "sendgrid_open.json"): Means([
        ev("email_opened", LENA, 1795341600, machine_open=False)]),
    ("sendgrid", "sendgrid_open_machine.json"): Means([
        ev("email_opened", LENA, 1795338060, machine_open=True)]),
    ("sendgrid", "sendgrid_click.json"): Means([
        ev("email_clicked", LENA, 1795341660, url=PRICING + "?utm_source=sendgrid")]),
    ("sendgrid", "sendgrid_spamreport.json"): Means([ev("email_complained", LENA, 1795345200)]),
    ("sendgrid", "sendgrid_unsubscribe.json"): Means([
        ev("email_unsubscribed", LENA, 1795345300)]),
    ("sendgrid", "sendgrid_group_unsubscribe.json"): Means([
        ev("activity", LENA, 1795345400, activity="email_group_unsubscribed")]),
    ("sendgrid", "sendgrid_group_resubscribe.json"): Means([
        ev("activity", LENA, 1795345500, activity="email_group_resubscribed")]),
    ("sendgrid", "sendgrid_account_status_change.json"): ignored("account_status_change"),
    ("sendgrid", "sendgrid_batch_mixed.json"): Means([
        ev("email_delivered", LENA, 1795338006),
        ev("email_opened", LENA, 1795338060, machine_open=True),
        ev("email_clicked", LENA, 1795341660, url=PRICING)], ["processed"]),
    # Mailgun: tests/events/email/mailgun/SOURCES.md
    ("mailgun", "mailgun_accepted.json"): ignored("accepted"),
    ("mailgun", "mailgun_rejected.json"): ignored("rejected"),
    ("mailgun", "mailgun_stored.json"): ignored("stored"),
    ("mailgun", "mailgun_delivered.json"): Means([
        ev("email_delivered", LENA, 1795338002.626182)]),
    ("mailgun", "mailgun_failed_permanent_bounce.json"): Means([
        ev("email_bounced", NO_SUCH, 1795338003.818328, hard=True)]),
    ("mailgun", "mailgun_failed_permanent_delayed_bounce.json"): Means([
        ev("email_bounced", "moved.away@example.org", 1795338003.818328, hard=True)]),
    ("mailgun", "mailgun_failed_permanent_old.json"): Means([
        ev("email_bounced", "lena.fischer@example.net", 1795338003.818328, hard=False)]),
    ("mailgun", "mailgun_failed_permanent_suppress-bounce.json"):
        ignored("failed (suppress-bounce)"),
    ("mailgun", "mailgun_failed_permanent_suppress-unsubscribe.json"):
        ignored("failed (suppress-unsubscribe)"),
    ("mailgun", "mailgun_failed_permanent_suppress-complaint.json"):
        ignored("failed (suppress-complaint)"),
    ("mailgun", "mailgun_failed_temporary.json"): ignored("failed (temporary)"),
    ("mailgun", "mailgun_opened.json"): Means([
        ev("email_opened", LENA, 1795341600.042277, machine_open=False)]),
    ("mailgun", "mailgun_opened_bot_apple.json"): Means([
        ev("email_opened", LENA, 1795338060.279025, machine_open=True)]),
    ("mailgun", "mailgun_clicked.json"): Means([
        ev("email_clicked", LENA, 1795341660.094891, url=PRICING)]),
    ("mailgun", "mailgun_unsubscribed.json"): Means([
        ev("email_unsubscribed", LENA, 1795345200.421473)]),
    ("mailgun", "mailgun_complained.json"): Means([
        ev("email_complained", LENA, 1795348800.049634)]),
    # Mailgun's legacy form webhooks: signed at the test's clock, which is the event's time
    ("mailgun", "mailgun_legacy_delivered.txt"): Means([ev("email_delivered", LENA, NOW_TS)]),
    ("mailgun", "mailgun_legacy_bounced.txt"): Means([
        ev("email_bounced", NO_SUCH, NOW_TS, hard=True)]),
    ("mailgun", "mailgun_legacy_dropped_hardfail.txt"): ignored("dropped (hardfail)"),
    ("mailgun", "mailgun_legacy_dropped_old.txt"): Means([
        ev("email_bounced", "lena.fischer@example.net", NOW_TS, hard=False)]),
    ("mailgun", "mailgun_legacy_opened.txt"): Means([
        ev("email_opened", LENA, NOW_TS, machine_open=False)]),
    ("mailgun", "mailgun_legacy_clicked.txt"): Means([
        ev("email_clicked", LENA, NOW_TS, url=PRICING)]),
    ("mailgun", "mailgun_legacy_unsubscribed.txt"): Means([
        ev("email_unsubscribed", LENA, NOW_TS)]),
    ("mailgun", "mailgun_legacy_complained.txt"): Means([
        ev("email_complained", LENA, NOW_TS)]),
    # Mailchimp: tests/events/email/mailchimp/SOURCES.md
    ("mailchimp", "mailchimp_subscribe.txt"): Means([
        ev("form_submitted", LENA, "2026-11-21 09:00:00", form_kind="newsletter")]),
    ("mailchimp", "mailchimp_unsubscribe_manual.txt"): Means([
        ev("email_unsubscribed", LENA, "2026-11-21 15:40:00")]),
    ("mailchimp", "mailchimp_unsubscribe_abuse.txt"): Means([
        ev("email_complained", LENA, "2026-11-21 15:40:00")]),
    ("mailchimp", "mailchimp_unsubscribe_delete.txt"): ignored("unsubscribe (delete)"),
    ("mailchimp", "mailchimp_profile.txt"): Means([
        ev("activity", LENA, "2026-11-21 10:30:00", activity="profile_updated")]),
    ("mailchimp", "mailchimp_cleaned_hard.txt"): Means([
        ev("email_bounced", NO_SUCH, "2026-11-21 16:00:00", hard=True)]),
    ("mailchimp", "mailchimp_cleaned_abuse.txt"): Means([
        ev("email_complained", ANNOYED, "2026-11-21 16:05:00")]),
    ("mailchimp", "mailchimp_campaign.txt"): ignored("campaign"),
    ("mailchimp", "mailchimp_validation_post_empty.txt"): ignored("(none)"),
    # Mandrill: tests/events/email/mandrill/SOURCES.md
    ("mandrill", "mandrill_send.txt"): ignored("send"),
    ("mandrill", "mandrill_deferral.txt"): ignored("deferral"),
    ("mandrill", "mandrill_delivered.txt"): Means([ev("email_delivered", LENA, 1795338003)]),
    ("mandrill", "mandrill_hard_bounce.txt"): Means([
        ev("email_bounced", NO_SUCH, 1795338005, hard=True)]),
    ("mandrill", "mandrill_soft_bounce.txt"): Means([
        ev("email_bounced", "full.inbox@example.org", 1795338005, hard=False)]),
    ("mandrill", "mandrill_open.txt"): Means([
        ev("email_opened", LENA, 1795341600, machine_open=False)]),
    ("mandrill", "mandrill_click.txt"): Means([
        ev("email_clicked", LENA, 1795341660, url="https://www.example.com/orders/1001")]),
    ("mandrill", "mandrill_spam.txt"): Means([ev("email_complained", ANNOYED, 1795345200)]),
    ("mandrill", "mandrill_unsub.txt"): Means([ev("email_unsubscribed", LENA, 1795345300)]),
    ("mandrill", "mandrill_reject.txt"): ignored("reject"),
    ("mandrill", "mandrill_blacklist_add.txt"): ignored("blacklist:add"),
    ("mandrill", "mandrill_blacklist_remove.txt"): ignored("blacklist:remove"),
    ("mandrill", "mandrill_whitelist_add.txt"): ignored("whitelist:add"),
    ("mandrill", "mandrill_test_webhook_empty.txt"): ignored(),  # Mandrill's URL check
    ("mandrill", "mandrill_batch_mixed.txt"): Means([
        ev("email_opened", LENA, 1795341600, machine_open=False),
        ev("email_bounced", NO_SUCH, 1795338005, hard=True)], ["send"]),
    # Mailjet: tests/events/email/mailjet/SOURCES.md
    ("mailjet", "mailjet_sent.json"): Means([ev("email_delivered", LENA, 1795338000)]),
    ("mailjet", "mailjet_sent_ungrouped.json"): Means([ev("email_delivered", LENA, 1795338000)]),
    ("mailjet", "mailjet_open.json"): Means([
        ev("email_opened", LENA, 1795341600, machine_open=False)]),
    ("mailjet", "mailjet_click.json"): Means([ev("email_clicked", LENA, 1795341660, url=PRICING)]),
    ("mailjet", "mailjet_bounce_hard.json"): Means([
        ev("email_bounced", NO_SUCH, 1795338005, hard=True)]),
    ("mailjet", "mailjet_bounce_soft.json"): Means([
        ev("email_bounced", "full.inbox@example.org", 1795338005, hard=False)]),
    ("mailjet", "mailjet_bounce_greylisted.json"): ignored("bounce (greylisted)"),
    ("mailjet", "mailjet_blocked_preblocked.json"): ignored("blocked"),
    ("mailjet", "mailjet_blocked_duplicate_in_campaign.json"): ignored("blocked"),
    ("mailjet", "mailjet_blocked_spam_reporter.json"): ignored("blocked"),
    ("mailjet", "mailjet_spam.json"): Means([ev("email_complained", ANNOYED, 1795345200)]),
    ("mailjet", "mailjet_unsub.json"): Means([ev("email_unsubscribed", LENA, 1795345300)]),
    ("mailjet", "mailjet_batch_mixed.json"): Means([
        ev("email_delivered", LENA, 1795338000),
        ev("email_opened", LENA, 1795341600, machine_open=False),
        ev("email_clicked", LENA, 1795341660, url=PRICING)]),
}
CASES = sorted(MEANING)


def test_every_fixture_has_its_meaning_in_the_table() -> None:
    on_disk = {(provider, name) for provider in SENDERS for name in fixtures(provider)
               if name != "mailchimp_upemail.txt"}  # a move, not an event: tested below
    assert on_disk == set(MEANING)


def recorded(app: Container, expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The canonical events in the history of every lead the expected events name."""
    seen: list[dict[str, Any]] = []
    for email in sorted({e["email"] for e in expected}):
        for entry in app.store.history(lead_id_for(email)):
            if entry.event:
                event = dict(entry.event)
                event["occurred_at"] = datetime.fromisoformat(event["occurred_at"])
                seen.append({k: event.get(k) for k in ("type", "email", "occurred_at")}
                            | {k: event[k] for k in event if k in FLAGS})
    return seen


FLAGS = ("machine_open", "hard", "url", "activity", "form_kind")


def key(event: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, str(v)) for k, v in event.items()))


def state(app: Container) -> list[Any]:
    return sorted(((x.lead_id, x.counters, x.email_status, round(x.score, 6),
                    len(app.store.history(x.lead_id))) for x in app.store.list_leads()), key=str)


@pytest.mark.parametrize(("provider", "name"), CASES, ids=[n for _, n in CASES])
def test_each_fixture_means_what_its_source_says(app_container: Container, provider: str,
                                                 name: str) -> None:
    means = MEANING[(provider, name)]
    client = client_for("email_webhook")
    raw = SENDERS[provider][0](fixture(provider, name))
    # WHEN the provider delivers its documented payload, correctly authenticated
    answer = deliver(client, provider, raw)
    body = answer.get_json()
    # THEN it is acknowledged with a 200, whatever it carries
    assert answer.status_code == 200, body
    # AND the lead's history holds exactly the canonical events the source names
    expected = [{k: v for k, v in e.items()} for e in means.events]
    assert sorted(map(key, recorded(app_container, expected))) == sorted(map(key, expected))
    if means.events:
        assert body["applied"] == len(means.events), body
    else:
        assert body["status"] == "ignored" and app_container.store.list_leads() == []
    # AND what is not scored is acknowledged by name
    assert body.get("ignored", {}) == {label: means.ignored.count(label)
                                       for label in means.ignored}, body
    # WHEN the same delivery arrives again (the provider's retry)
    once = state(app_container)
    again = deliver(client, provider, raw)
    # THEN it is acknowledged and changes nothing
    assert again.status_code == 200, again.get_json()
    assert again.get_json().get("duplicates", 0) == len(means.events)
    assert state(app_container) == once


def test_mailchimp_upemail_moves_the_subscriber_to_the_new_address(
        app_container: Container) -> None:
    client = client_for("email_webhook")
    deliver(client, "mailchimp", fixture("mailchimp", "mailchimp_subscribe.txt"))
    # WHEN Mailchimp reports the address change (and retries it)
    for _ in range(2):
        answer = deliver(client, "mailchimp", fixture("mailchimp", "mailchimp_upemail.txt"))
        assert answer.status_code == 200, answer.get_json()
    # THEN the signup lives at the new address, and nothing at the old one
    assert app_container.store.get_lead(lead_id_for(LENA)) is None
    moved = app_container.store.get_lead(lead_id_for("lena@example.org"))
    assert moved is not None and moved.counters == {"form_submitted": 1}


def test_mailchimp_signup_after_an_unsubscribe_makes_the_address_active_again(
        app_container: Container) -> None:
    client = client_for("email_webhook")
    # GIVEN Lena unsubscribed at 15:40 (mailchimp_unsubscribe_manual.txt)
    unsubscribe = fixture("mailchimp", "mailchimp_unsubscribe_manual.txt")
    assert deliver(client, "mailchimp", unsubscribe).status_code == 200
    lead = app_container.store.get_lead(lead_id_for(LENA))
    assert lead is not None and lead.email_status == "unsubscribed"
    # WHEN she subscribes again at 18:00 (mailchimp_subscribe.txt, fired later): Mailchimp's
    # guide says a subscribe makes the address active again
    signup = fixture("mailchimp", "mailchimp_subscribe.txt").replace(
        b"fired_at=2026-11-21+09%3A00%3A00", b"fired_at=2026-11-21+18%3A00%3A00")
    assert deliver(client, "mailchimp", signup).status_code == 200
    # THEN the address takes mail again, and a signup scores what a signup scores
    lead = app_container.store.get_lead(lead_id_for(LENA))
    assert lead is not None and lead.email_status == "active"
    assert lead.counters == {"email_unsubscribed": 1, "form_submitted": 1}


def test_a_first_mailchimp_signup_scores_no_resubscribe_points(app_container: Container) -> None:
    # GIVEN a new subscriber (mailchimp_subscribe.txt) WHEN Mailchimp reports the signup
    client = client_for("email_webhook")
    assert deliver(client, "mailchimp", fixture("mailchimp", "mailchimp_subscribe.txt")
                   ).status_code == 200
    # THEN the lead holds the newsletter signup's points only (no "resubscribed" bonus),
    # faded since the signup was fired
    lead = app_container.store.get_lead(lead_id_for(LENA))
    rules = app_container.rules
    signup = rules.engagement["form.newsletter"]
    age_days = (app_container.now() - at("2026-11-21 09:00:00")).total_seconds() / 86400
    assert lead is not None and lead.email_status == "active"
    assert lead.engagement_score == pytest.approx(
        signup.points * 2 ** (-age_days / rules.half_life_for(signup)), rel=1e-3)


def _mailgun_failure(reason: str, code: int, enhanced: str, message: str) -> bytes:
    import json

    body = json.loads(fixture("mailgun", "mailgun_failed_permanent_bounce.json"))
    data = body["event-data"]
    data["reason"] = reason
    data["delivery-status"].update(code=code, message=message)
    data["delivery-status"]["enhanced-code"] = enhanced
    return json.dumps(body).encode()


@pytest.mark.parametrize(("reason", "code", "enhanced", "message", "hard"), [
    # Mailgun's Classified Bounces list: an ESP block of the sender is no bad address
    ("generic", 554, "5.7.1", "5.7.1 [CS01] Message rejected due to local policy", False),
    ("espblock", 550, "5.7.1", "5.7.1 Service unavailable; client host blocked", False),
    ("generic", 550, "5.1.1", "5.1.1 The email account does not exist", True),
    ("generic", 550, "", "5.1.10 Recipient address rejected: no such user", True),
])
def test_mailgun_permanent_failures_are_hard_only_for_a_bad_address(
        app_container: Container, reason: str, code: int, enhanced: str, message: str,
        hard: bool) -> None:
    # GIVEN a permanent failure with another reason than `bounce`
    raw = SENDERS["mailgun"][0](_mailgun_failure(reason, code, enhanced, message))
    answer = deliver(client_for("email_webhook"), "mailgun", raw)
    assert answer.status_code == 200, answer.get_json()
    # THEN it is a hard bounce only when the enhanced code says the address is bad (5.1.x)
    lead = app_container.store.get_lead(lead_id_for(NO_SUCH))
    history = app_container.store.history(lead_id_for(NO_SUCH))
    assert lead is not None and [h.event["hard"] for h in history if h.event] == [hard]
    assert lead.email_status == ("bounced" if hard else "active")
