"""One rules version at a time, and views that never go stale (issue 15), on every store."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import yaml
from builders import event, form, opened
from conftest import NOW

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules, default_rules_text, parse_rules
from leadscore.domain.scoring import apply_events as score_all
from leadscore.domain.scoring import materialise
from leadscore.service.decay import run_decay
from leadscore.service.rescore import rescore
from leadscore.service.writes import apply_events

ANA = "ana@acme.com"
DAY = timedelta(days=1)


def edited(**engagement: float) -> Rules:
    """The default rules with some points changed and the same `version`."""
    data = yaml.safe_load(default_rules_text())
    for key, points in engagement.items():
        data["engagement"][key]["points"] = points
    return parse_rules(yaml.safe_dump(data))


FIRST = [form(ANA, "demo", NOW, kind="demo_request", job_title="CTO", industry="SaaS"),
         opened(ANA, "o1", NOW + timedelta(minutes=5))]


def expected(rules: Rules, events: list[Any], now: Any) -> Any:
    lead, _ = score_all(None, lead_id_for(ANA), ANA, events, rules, now)
    return lead


def same_score(lead: Any, want: Any) -> None:
    assert lead.rules_hash == want.rules_hash
    assert round(lead.score, 4) == round(want.score, 4)
    assert lead.grade == want.grade  # the stage continues from the stored one (hysteresis)


def test_an_event_rebuilds_a_lead_stored_under_other_rules(store: Any, rules: Rules) -> None:
    # GIVEN a lead scored under the default rules
    apply_events(store, lead_id_for(ANA), ANA, FIRST, rules, NOW)
    # WHEN the rules are edited without a new version and a (blind on Firestore) open arrives
    new = edited(**{"form.demo_request": 5})
    assert new.version == rules.version and new.content_hash != rules.content_hash
    later = NOW + DAY
    more = [opened(ANA, "o2", later)]
    apply_events(store, lead_id_for(ANA), ANA, more, new, later)
    # THEN the lead is what the new rules make of every event, never a mix
    lead = store.get_lead(lead_id_for(ANA))
    same_score(lead, expected(new, FIRST + more, later))
    assert lead.stage == "mql"  # 15 points under the gate, but within its 14-day stay
    assert any(e.kind == "rescore" for e in store.history(lead_id_for(ANA)))


def test_a_profile_event_rebuilds_too(store: Any, rules: Rules) -> None:
    apply_events(store, lead_id_for(ANA), ANA, FIRST, rules, NOW)
    new = edited(**{"form.newsletter": 30})
    later = NOW + DAY
    more = [form(ANA, "nl", later, kind="newsletter", country="Spain")]
    apply_events(store, lead_id_for(ANA), ANA, more, new, later)
    same_score(store.get_lead(lead_id_for(ANA)), expected(new, FIRST + more, later))


def test_the_decay_job_rebuilds_before_it_refreshes(store: Any, rules: Rules) -> None:
    apply_events(store, lead_id_for(ANA), ANA, FIRST, rules, NOW)
    new = edited(**{"form.demo_request": 5})
    later = NOW + 3 * DAY
    run_decay(store, new, later)
    same_score(store.get_lead(lead_id_for(ANA)), expected(new, FIRST, later))


def test_rescore_applies_rules_edited_without_a_new_version(store: Any, rules: Rules) -> None:
    apply_events(store, lead_id_for(ANA), ANA, FIRST, rules, NOW)
    rescore(store, rules, NOW, dry_run=False)  # marks the lead rescored for this version
    new = edited(**{"form.demo_request": 5})
    report = rescore(store, new, NOW, dry_run=False)
    assert report.skipped == 0 and report.changed == 1
    same_score(store.get_lead(lead_id_for(ANA)), expected(new, FIRST, NOW))
    again = rescore(store, new, NOW, dry_run=False)
    assert again.skipped == 1


def stale_view(store: Any, rules: Rules, now: Any) -> list[str]:
    """Leads whose stored stage, grade or non-opener flag differs from the one at `now`."""
    out = []
    for lead in store.iter_leads(limit=1000):
        fresh = materialise(lead, rules, now)
        if (fresh.stage, fresh.grade, fresh.non_opener) != (
                lead.stage, lead.grade, lead.non_opener):
            out.append(f"{lead.email}: stored {lead.stage} {lead.grade} {lead.non_opener}, "
                       f"now {fresh.stage} {fresh.grade} {fresh.non_opener}")
    return out


def test_after_any_run_every_stored_view_is_the_view_now(store: Any, rules: Rules) -> None:
    # GIVEN leads with random fits and random engagement, including penalties that fade
    # slower than points (engagement that is not monotonic) and leads just over a threshold
    rnd = random.Random(15)
    kinds = ["newsletter", "content_download", "webinar", "demo_request"]
    titles = ["CTO", "Student", "Marketing Manager", "Head of Sales", ""]
    for i in range(8 if type(store).__name__ == "FirestoreStore" else 20):
        email = f"p{i}@acme{i % 3}.com"
        at = NOW + timedelta(hours=rnd.randint(0, 200))
        events = [form(email, f"f{i}", at, kind=rnd.choice(kinds),
                       job_title=rnd.choice(titles), industry=rnd.choice(["SaaS", "retail"]))]
        events += [event("email_delivered", email, f"d{i}", at - 10 * DAY, source="esp")]
        if rnd.random() < 0.4:
            events.append(event("email_unsubscribed", email, f"u{i}", at, source="esp"))
        events += [opened(email, f"o{i}-{k}", at + timedelta(days=k)) for k in
                   range(rnd.randint(0, 4))]
        apply_events(store, lead_id_for(email), email, events, rules, NOW + 12 * DAY)
    # WHEN the job runs at irregular moments over two years
    t = NOW + 13 * DAY
    while t < NOW + 730 * DAY:
        run_decay(store, rules, t)
        # THEN after each run every stored view is the one computed at that moment
        assert stale_view(store, rules, t) == [], t
        t += timedelta(days=rnd.choice([1, 3, 9, 30, 61]), hours=rnd.randint(0, 23))



def test_a_held_stage_is_reviewed_until_engagement_turns_negative(store: Any,
                                                                  rules: Rules) -> None:
    # GIVEN a perfect fit whose demo request (45, half-life 45 days) and unsubscribe (-15,
    # 180 days) net to 0 after 95 days: an MQL held by hysteresis while engagement >= 0
    held = "held@acme.com"
    apply_events(store, lead_id_for(held), held, [
        form(held, "h1", NOW, kind="demo_request", job_title="CTO", industry="SaaS",
             seniority="VP", company_size="51-200"),
        event("email_unsubscribed", held, "h2", NOW, source="esp")], rules, NOW)
    # WHEN the job runs on day 93 (engagement 0.3: reviews used to stop under 0.5) and later
    for day in (30, 93, 120):
        run_decay(store, rules, NOW + day * DAY)
    # THEN the lead was reviewed when engagement turned negative, and is no MQL any more
    assert store.get_lead(lead_id_for(held)).stage == "lead"
    assert stale_view(store, rules, NOW + 120 * DAY) == []


def test_the_refresh_stores_the_pruned_accumulators(store: Any, rules: Rules) -> None:
    # GIVEN a one-hour half-life, so an event a month old sits alone in its own (worthless)
    # epoch bucket, beside a fresh one
    data = yaml.safe_load(default_rules_text())
    data["engagement"]["activity.flash"] = {"points": 5, "half_life_days": 1 / 24}
    fast = parse_rules(yaml.safe_dump(data))
    events = [event("activity", ANA, "old", NOW - 30 * DAY, source="t", activity="flash"),
              form(ANA, "new", NOW, kind="demo_request")]
    apply_events(store, lead_id_for(ANA), ANA, events, fast, NOW)
    assert len(store.get_lead(lead_id_for(ANA)).eng_acc) == 2
    # WHEN the job refreshes it
    run_decay(store, fast, NOW + 2 * DAY)
    # THEN the stored document lost the buckets worth nothing, in the same transaction
    kept = store.get_lead(lead_id_for(ANA)).eng_acc
    assert len(kept) == 1 and all(k.startswith("s3888000") for k in kept), kept
