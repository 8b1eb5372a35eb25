"""A year of newsletters, opens and demo requests for 300 generated leads, decayed daily;
the decay job's dispatch sends each day's stage changes and flagged non-openers to
Mailchimp, Brevo and SendGrid at once, and a full sweep runs weekly (and on the last day).

At the end each fake holds exactly the non-openers the rules name removed (archived in
Mailchimp, on the non-opener list in Brevo, in SendGrid's suppression group), and every
other member shows the lead's score as of the last sync."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from builders import event, opened
from conftest import NOW
from fakes.brevo_api import BrevoFake
from fakes.mailchimp_api import MailchimpFake
from fakes.sendgrid_api import SendGridFake

from esp.conftest import (
    AUDIENCE,
    BREVO_KEY,
    BREVO_NON_OPENERS,
    BREVO_STAGE_LISTS,
    MAILCHIMP_KEY,
    SENDGRID_GROUP,
    SENDGRID_KEY,
    SENDGRID_STAGE_LISTS,
    warm_up,
)
from leadscore.config import Settings
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.decay import run_decay
from leadscore.service.writes import apply_events
from leadscore.store.memory import MemoryStore

LEADS = 300
DAYS = 365
START = NOW - timedelta(days=DAYS)


def test_a_year_of_activity_ends_with_the_right_members_in_every_tool(
        mailchimp_api: MailchimpFake, brevo_api: BrevoFake, sendgrid_api: SendGridFake,
        rules: Rules) -> None:
    # GIVEN three email tools set up, and a deployment syncing to all of them
    settings = Settings(
        store="memory", mailchimp_api_key=MAILCHIMP_KEY, mailchimp_list_id=AUDIENCE,
        mailchimp_api_url=f"{mailchimp_api.url}/3.0", mailchimp_removal="archive",
        mailchimp_status_if_new="subscribed",
        brevo_api_key=BREVO_KEY, brevo_api_url=f"{brevo_api.url}/v3",
        brevo_stage_lists=BREVO_STAGE_LISTS, brevo_non_opener_list=BREVO_NON_OPENERS,
        sendgrid_api_key=SENDGRID_KEY, sendgrid_api_url=sendgrid_api.url,
        sendgrid_stage_lists=SENDGRID_STAGE_LISTS, sendgrid_removal="suppress",
        sendgrid_suppression_group=SENDGRID_GROUP, sendgrid_poll_wait_s=0)
    store = MemoryStore()
    today = {"at": START}
    app = Container(settings=settings, store=store, rules=rules, clock=lambda: today["at"])
    daily = Container(settings=settings.model_copy(update={"esp_full_sweep": False}),
                      store=store, rules=rules, clock=lambda: today["at"])
    for esp in app.esp_syncs():
        esp.setup()
    # 300 people: each signs up in the first two months, gets the weekly newsletter and
    # opens it with their own likelihood; a third stop opening at some point; some ask
    # for a demo.
    rng = random.Random(22)
    people = [(f"reader{n:03d}@example.org", rng.randrange(60), rng.random(),
               rng.randrange(30, DAYS), rng.random() < 0.3, rng.randrange(DAYS))
              for n in range(LEADS)]
    # WHEN a year passes, one day at a time: the day's events, then the decay job
    for day in range(DAYS):
        at = START + timedelta(days=day, hours=9)
        for email, joined, opens, stops, quits, demo_day in people:
            if day < joined:
                continue
            lead_id, events = lead_id_for(email), []
            if day == joined:
                events.append(event("form_submitted", email, f"join-{email}", at,
                                    source="web", form_kind="newsletter"))
            if (day - joined) % 7 == 0:
                events.append(event("email_delivered", email, f"d-{day}-{email}", at,
                                    source="esp"))
                if rng.random() < opens and not (quits and day >= stops):
                    events.append(opened(email, f"o-{day}-{email}", at + timedelta(hours=2)))
            if events:
                apply_events(store, lead_id, email, events, rules, at)
            if day == demo_day and opens > 0.7:
                warm_up(store, rules, email, at)
        today["at"] = START + timedelta(days=day, hours=23)
        summary = run_decay(store, rules, today["at"])
        # what functions/inactivity_decay does: daily, the stage changes and new flags;
        # weekly (and on the last day) the full comparison, to bound the test's runtime
        weekly = day % 7 == 0 or day == DAYS - 1
        (app if weekly else daily).dispatch(summary.events, sweep=True)
    # THEN every tool removed exactly the flagged non-openers
    leads = store.iter_leads(limit=1000)
    assert len(leads) == LEADS
    flagged = {lead.email for lead in leads if lead.non_opener}
    assert 0 < len(flagged) < LEADS
    archived = {m["email_address"] for m in mailchimp_api.members.values() if m["archived"]}
    assert archived == flagged
    brevo_parked = {c["email"] for c in brevo_api.contacts.values()
                    if c["listIds"] == {BREVO_NON_OPENERS}}
    assert brevo_parked == flagged
    assert sendgrid_api.groups[SENDGRID_GROUP] == {e.lower() for e in flagged}
    # AND every member still on a list shows the lead's score, stage and grade now
    for lead in leads:
        score, stage = round(lead.score), lead.stage
        if lead.email not in flagged:
            member = mailchimp_api.member(lead.email)
            assert member is not None and not member["archived"]
            assert (member["merge_fields"]["LS_SCORE"], member["merge_fields"]["LS_STAGE"],
                    member["merge_fields"]["LS_GRADE"]) == (score, stage, lead.grade)
            assert f"leadscore-{stage}" in member["tags"]
            contact = brevo_api.contact(lead.email)
            assert contact is not None and contact["listIds"] == {BREVO_STAGE_LISTS[stage]}
        assert brevo_api.contact(lead.email)["attributes"]["LS_SCORE"] == score  # type: ignore[index]
        fields: dict[str, Any] = sendgrid_api.by_name(lead.email)
        assert (fields["ls_score"], fields["ls_stage"]) == (score, stage)
        # the clean-up is in the lead's own history
        kinds = [e.kind for e in store.history(lead.lead_id) if e.kind.startswith("esp_")]
        assert (kinds.count("esp_removed") - kinds.count("esp_restored")) == (
            3 if lead.email in flagged else 0)
