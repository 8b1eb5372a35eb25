"""The Slack card over a real HTTP fake that enforces Block Kit's limits and Slack's answers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from conftest import NOW
from fakes.slack_api import SlackWebhookFake

from integrations.conftest import HOOK_PATH, warm_lead
from integrations.test_cards import change_for
from leadscore.domain.rules import Rules
from leadscore.integrations import slack_actions
from leadscore.integrations.cards import lead_card
from leadscore.integrations.http_out import retry_after_s, with_retries
from leadscore.integrations.ports import (
    Activity,
    LeadCard,
    PermanentDelivery,
    Reason,
    RetryableDelivery,
)
from leadscore.integrations.slack import SlackNotifier, message_for, should_notify

SECRET = "slack-action-secret"


def mql_card(rules: Rules) -> LeadCard:
    lead, history, _ = warm_lead(rules)
    change = change_for(lead.lead_id, score=lead.score, grade=lead.grade)
    return lead_card(lead, history, change, "https://crm.example/leads",
                     show_email=False, rules=rules)


def notifier(fake: SlackWebhookFake, **options: Any) -> SlackNotifier:
    return SlackNotifier(fake.url + HOOK_PATH, clock=lambda: NOW.timestamp(), **options)


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_an_mql_card_reaches_slack_with_its_reasons_and_a_link_by_id(
        slack_api: SlackWebhookFake, rules: Rules) -> None:
    card = mql_card(rules)
    # WHEN the card is sent
    notifier(slack_api).notify(card)
    # THEN Slack accepted one message whose blocks say who, why and what they did
    assert len(slack_api.delivered) == 1
    message = slack_api.delivered[0]
    text = all_text(message["blocks"])
    assert message["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": "MQL: Ana Pereira", "emoji": True}}
    for words in ("Requested a demo", "Visited the pricing page (x2)", "Industry: retail",
                  "Ecommerce manager at Tiendas Sol", "Lead → MQL", f"*Grade*\\n{card.grade}"):
        assert words in text
    button = message["blocks"][-2]["elements"][0]
    assert button["url"] == f"https://crm.example/leads/{card.lead_id}"
    # AND the email is nowhere, as the setting says
    assert "ana@" not in json.dumps(message)


def test_over_long_texts_are_cut_within_slacks_limits(slack_api: SlackWebhookFake) -> None:
    # GIVEN a card whose every text is far over Slack's limits, with & and < to escape
    huge = "Q&A <b> " * 2000
    card = LeadCard(lead_id="l_1", change_id="h_1", name=huge, company=huge, job_title=huge,
                    email="a@b.example", score=90, fit_score=40, engagement_score=50,
                    grade="A1", stage_before="mql", stage_after="sql", changed_at=NOW,
                    reasons=[Reason(text=huge, points=50 - n) for n in range(3)],
                    activities=[Activity(at=NOW - timedelta(hours=n), text=huge)
                                for n in range(40)],
                    dashboard_url="https://crm.example/leads/l_1")
    # WHEN it is sent: the fake refuses any block over a limit with 400 invalid_blocks
    notifier(slack_api).notify(card)
    # THEN Slack accepted it, every text cut with an ellipsis and no escape split in half
    blocks = slack_api.delivered[0]["blocks"]
    assert len(blocks[0]["text"]["text"]) == 150 and blocks[0]["text"]["text"].endswith("…")
    assert all(len(f["text"]) <= 2000 for f in blocks[1]["fields"])
    for block in blocks[2:4]:
        assert len(block["text"]["text"]) <= 3000
        assert "&am…" not in block["text"]["text"] and "&a…" not in block["text"]["text"]
        assert "<b>" not in block["text"]["text"]  # escaped, so no markup from lead data
    assert "more" in blocks[3]["text"]["text"]  # activities that did not fit are counted


def test_the_fake_refuses_what_slack_refuses(slack_api: SlackWebhookFake,
                                             rules: Rules) -> None:
    # GIVEN a message with a header over 150 characters (as an unguarded client would send)
    message = message_for(mql_card(rules))
    message["blocks"][0]["text"]["text"] = "x" * 151
    from leadscore.integrations.http_out import request_json

    answer = request_json("POST", slack_api.url + HOOK_PATH, message, {})
    assert (answer.status, answer.body) == (400, b"invalid_blocks")
    too_many = {"text": "x", "blocks": [{"type": "divider"}] * 51}
    assert request_json("POST", slack_api.url + HOOK_PATH, too_many, {}).status == 400
    assert slack_api.delivered == []


def test_a_429_then_success_is_delivered_once_after_the_asked_wait(
        slack_api: SlackWebhookFake, rules: Rules) -> None:
    slack_api.fail_next(429, "rate_limited", {"Retry-After": "2"})
    waits: list[float] = []
    with_retries(lambda: notifier(slack_api).notify(mql_card(rules)), sleep=waits.append)
    assert waits == [2.0]
    assert len(slack_api.received) == 1 and len(slack_api.delivered) == 1
    assert len(slack_api.requests) == 2


def test_a_wait_longer_than_the_cap_goes_back_to_the_outbox(
        slack_api: SlackWebhookFake, rules: Rules) -> None:
    slack_api.fail_next(429, "rate_limited", {"Retry-After": "120"})
    with pytest.raises(RetryableDelivery) as raised:
        with_retries(lambda: notifier(slack_api).notify(mql_card(rules)), sleep=pytest.fail)
    assert raised.value.retry_after_s == 120 and slack_api.delivered == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_retryable(slack_api: SlackWebhookFake, rules: Rules,
                                     status: int) -> None:
    slack_api.fail_next(status, "internal_error")
    with pytest.raises(RetryableDelivery):
        notifier(slack_api).notify(mql_card(rules))


@pytest.mark.parametrize(("status", "body"), [(400, "invalid_blocks"), (404, "no_service"),
                                              (403, "action_prohibited")])
def test_a_refusal_is_permanent(slack_api: SlackWebhookFake, rules: Rules, status: int,
                                body: str) -> None:
    slack_api.fail_next(status, body)
    with pytest.raises(PermanentDelivery, match=body):
        with_retries(lambda: notifier(slack_api).notify(mql_card(rules)), sleep=pytest.fail)
    assert len(slack_api.requests) == 1  # never retried


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_retryable(slack_api: SlackWebhookFake,
                                                     rules: Rules, status: int) -> None:
    # GIVEN a webhook URL that now redirects (a retired hook, a proxy in front of it)
    slack_api.fail_next(status, "moved", {"Location": slack_api.url + HOOK_PATH + "/new"})
    # WHEN a card is sent
    with pytest.raises(RetryableDelivery) as moved:
        notifier(slack_api).notify(mql_card(rules))
    # THEN it is kept to try again, with the status, and nothing went to the new address:
    # followed, a 303 became a GET without the card, and its answer decided the delivery
    assert moved.value.status == status
    assert [method for method, _ in slack_api.requests] == ["POST"]


def test_an_unreachable_webhook_is_retryable() -> None:
    card = LeadCard(lead_id="l", change_id="h", score=1, fit_score=0, engagement_score=1,
                    grade="D4", stage_before="lead", stage_after="mql", changed_at=NOW)
    with pytest.raises(RetryableDelivery):
        SlackNotifier("http://127.0.0.1:9/services/x", timeout_s=2).notify(card)


def test_signed_accept_and_reject_links_verify_and_refuse_tampering(
        slack_api: SlackWebhookFake, rules: Rules) -> None:
    from urllib.parse import parse_qsl, urlsplit

    card = mql_card(rules)
    notifier(slack_api, action_url="https://leads.example/sales_action",
             action_secret=SECRET, action_ttl_s=3600).notify(card)
    buttons = slack_api.delivered[0]["blocks"][-2]["elements"]
    links = {b["action_id"]: dict(parse_qsl(urlsplit(b["url"]).query)) for b in buttons
             if b["action_id"].startswith("sales_")}
    accept, reject = links["sales_accept"], links["sales_reject"]
    assert "@" not in json.dumps(links)
    # THEN each link verifies to its outcome, also while the secret rotates
    done = slack_actions.verify_action(accept, ["new-secret", SECRET], NOW)
    assert (done.lead_id, done.change_id, done.outcome) == (
        card.lead_id, card.change_id, "sales_accepted")
    assert slack_actions.verify_action(reject, [SECRET], NOW).outcome == "sales_rejected"
    # AND a forged, altered or expired link is refused
    for bad, at in ((dict(accept, sig="0" * 64), NOW), (dict(accept, action="reject"), NOW),
                    (dict(accept, lead="l_other"), NOW), (accept, NOW + timedelta(hours=2)),
                    ({k: v for k, v in accept.items() if k != "sig"}, NOW),
                    # found by a review: text compare_digest refuses (a 500 before), and
                    # expiries int() reads but a timestamp cannot hold
                    (dict(accept, sig="\u00e9"), NOW), (dict(accept, exp="\u00b2"), NOW),
                    (dict(accept, exp="9" * 4000), NOW), (dict(accept, exp="-1"), NOW)):
        with pytest.raises(slack_actions.ActionLinkInvalid):
            slack_actions.verify_action(bad, [SECRET], at)


def test_only_moves_up_into_the_chosen_stages_are_announced() -> None:
    assert should_notify(change_for("l", "lead", "mql"), "mql,sql")
    assert should_notify(change_for("l", "lead", "sql"), "mql,sql")
    assert not should_notify(change_for("l", "sql", "mql"), "mql,sql")  # a move down
    assert not should_notify(change_for("l", "lead", "mql"), "sql")
    assert not should_notify(change_for("l", "sql", "customer"), "mql,sql")


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert retry_after_s("30") == 30
    assert retry_after_s("Sun, 22 Nov 2026 12:01:00 GMT", NOW) == 60
    assert retry_after_s("soon") is None and retry_after_s(None) is None
