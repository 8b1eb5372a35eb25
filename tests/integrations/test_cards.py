"""Lead cards: who, why (the top three reasons now, in plain words) and what they did."""

from __future__ import annotations

from datetime import timedelta

from builders import form
from conftest import NOW

from integrations.conftest import warm_lead
from leadscore.domain.handover import StageChange
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.integrations.cards import lead_card, score_record, top_reasons
from leadscore.service.writes import apply_events
from leadscore.store.memory import MemoryStore


def change_for(lead_id: str, before: str = "lead", after: str = "mql", score: float = 71.3,
               grade: str = "C1") -> StageChange:
    return StageChange(id="h_5c0f2a9e", lead_id=lead_id, email="x@example.com",
                       stage_before=before, stage_after=after, score=score, grade=grade,
                       at=NOW, next_attempt_at=NOW)


def test_an_mql_card_shows_the_three_reasons_worth_most_now_in_plain_words(
        rules: Rules) -> None:
    # GIVEN an MQL with a demo request, two pricing visits, a retail profile and a newsletter
    lead, history, _ = warm_lead(rules)
    # WHEN its card is built
    card = lead_card(lead, history, change_for(lead.lead_id), "https://crm.example/leads",
                     show_email=False, rules=rules)
    # THEN the three reasons are the demo, the pricing visits (summed) and the industry fit
    assert [r.text for r in card.reasons] == [
        "Requested a demo", "Visited the pricing page", "Industry: retail"]
    assert [r.count for r in card.reasons] == [1, 2, 1]
    assert card.reasons[0].points < 45  # faded since yesterday
    assert card.reasons[2].points == 8  # fit never fades
    # AND who they are, without the email, and a link by lead id
    assert (card.name, card.company, card.job_title, card.email) == (
        "Ana Pereira", "Tiendas Sol", "Ecommerce manager", None)
    assert card.dashboard_url == f"https://crm.example/leads/{lead.lead_id}"
    assert "@" not in card.dashboard_url
    # AND the latest activities first
    assert [a.text for a in card.activities][:2] == ["Requested a demo",
                                                     "Visited the pricing page"]
    assert card.activities[0].at == NOW - timedelta(days=1)


def test_the_email_appears_only_when_allowed_and_a_url_template_takes_the_id(
        rules: Rules) -> None:
    lead, history, _ = warm_lead(rules)
    card = lead_card(lead, history, change_for(lead.lead_id),
                     "https://app.example/#/lead/{lead_id}?tab=history", show_email=True)
    assert card.email == lead.email
    assert card.dashboard_url == f"https://app.example/#/lead/{lead.lead_id}?tab=history"
    assert lead_card(lead, history, change_for(lead.lead_id), "", False).dashboard_url is None


def test_without_rules_points_count_as_earned_with_rules_as_worth_now(rules: Rules) -> None:
    # GIVEN a content download ten months ago (10 points then) and a newsletter today (3)
    email = "old@example.com"
    store = MemoryStore()
    lead_id = lead_id_for(email)
    apply_events(store, lead_id, email, [
        form(email, "dl", NOW - timedelta(days=300), kind="content_download"),
        form(email, "nl", NOW, kind="newsletter")], rules, NOW)
    history = store.history(lead_id)
    # THEN without rules the old download ranks first; with rules it has faded below 3
    assert [r.text for r in top_reasons(history, NOW)] == [
        "Downloaded content", "Signed up for the newsletter"]
    assert [r.text for r in top_reasons(history, NOW, rules)] == [
        "Signed up for the newsletter", "Downloaded content"]


def test_a_score_record_carries_the_view_and_the_reasons_in_one_line(rules: Rules) -> None:
    lead, history, _ = warm_lead(rules)
    record = score_record(lead, history, NOW, rules)
    assert (record.email, record.stage, record.grade) == (lead.email, "mql", lead.grade)
    assert record.top_reasons.startswith("Requested a demo (+")
    assert "Visited the pricing page (x2)" in record.top_reasons
