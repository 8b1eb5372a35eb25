"""The email tools' fakes on real local HTTP servers, and leads to sync to them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from builders import activity, event, form
from conftest import NOW
from fakes.brevo_api import BrevoFake
from fakes.mailchimp_api import MailchimpFake
from fakes.sendgrid_api import SendGridFake
from fakes.server import serving

from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.domain.state import LeadState
from leadscore.integrations.esp.brevo import BrevoSync
from leadscore.integrations.esp.mailchimp import MailchimpSync
from leadscore.integrations.esp.sendgrid_mc import SendGridSync
from leadscore.service.writes import apply_events

MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us6"
AUDIENCE = "a1b2c3d4e5"
DAY = timedelta(days=1)


@pytest.fixture
def mailchimp_api() -> Iterator[MailchimpFake]:
    fake = MailchimpFake(MAILCHIMP_KEY, AUDIENCE)
    with serving(fake):
        yield fake


def mailchimp(fake: MailchimpFake, removal: str = "tag", **kw: Any) -> MailchimpSync:
    sync = MailchimpSync(MAILCHIMP_KEY, AUDIENCE, api_url=f"{fake.url}/3.0", removal=removal,
                         **kw)
    sync.setup()
    return sync


def no_sleep(_: float) -> None:
    """The sweep's backoff, skipped in tests (the waits asked for are checked separately)."""


def newsletter_lead(store: Any, rules: Rules, email: str, at: datetime = NOW) -> LeadState:
    """Signed up to the newsletter and got one email: a cold lead (stage `lead`)."""
    apply_events(store, lead_id_for(email), email,
                 [form(email, f"news-{email}", at),
                  event("email_delivered", email, f"sent-{email}", at, source="esp")],
                 rules, at)
    lead = store.get_lead(lead_id_for(email))
    assert lead is not None
    return lead


def silent_reader(store: Any, sync: Any, rules: Rules, email: str,
                  days: int) -> tuple[LeadState, datetime]:
    """A reader synced on day one who opens nothing for `days`: the decay flags them and
    the next sweep takes them off the list (its removal action). Returns (lead, that day)."""
    from leadscore.service.decay import run_decay
    from leadscore.service.esp_sync import sync_tool

    lead = newsletter_lead(store, rules, email)
    sync_tool(store, sync, rules, NOW, sleep=no_sleep)
    later = NOW + days * DAY
    run_decay(store, rules, later)
    assert sync_tool(store, sync, rules, later, sleep=no_sleep).removed == 1
    return lead, later


def warm_up(store: Any, rules: Rules, email: str, at: datetime) -> LeadState:
    """A demo request and two pricing visits from a retail manager: an MQL or better."""
    apply_events(store, lead_id_for(email), email, [
        activity(email, f"price-1-{at}", at, name="pricing_page_visit"),
        activity(email, f"price-2-{at}", at, name="pricing_page_visit"),
        form(email, f"demo-{at}", at, kind="demo_request", job_title="Ecommerce manager",
             industry="retail")], rules, at)
    lead = store.get_lead(lead_id_for(email))
    assert lead is not None
    return lead


BREVO_KEY = "xkeysib-fake-0123456789"
BREVO_STAGE_LISTS = {"lead": 1, "mql": 2, "sql": 3, "customer": 4}
BREVO_NON_OPENERS = 9


@pytest.fixture
def brevo_api() -> Iterator[BrevoFake]:
    fake = BrevoFake(BREVO_KEY, {*BREVO_STAGE_LISTS.values(), BREVO_NON_OPENERS})
    with serving(fake):
        yield fake


def brevo(fake: BrevoFake, removal: str = "list") -> BrevoSync:
    sync = BrevoSync(BREVO_KEY, api_url=f"{fake.url}/v3", stage_lists=BREVO_STAGE_LISTS,
                     removal=removal, non_opener_list=BREVO_NON_OPENERS)
    sync.setup()
    return sync


SENDGRID_KEY = "SG.fake-key.0123456789"
SENDGRID_STAGE_LISTS = {"lead": "list-lead", "mql": "list-mql", "sql": "list-sql",
                        "customer": "list-customer"}
SENDGRID_GROUP = 4242


@pytest.fixture
def sendgrid_api() -> Iterator[SendGridFake]:
    fake = SendGridFake(SENDGRID_KEY, set(SENDGRID_STAGE_LISTS.values()), {SENDGRID_GROUP})
    with serving(fake):
        yield fake


def sendgrid(fake: SendGridFake, removal: str = "lists") -> SendGridSync:
    sync = SendGridSync(SENDGRID_KEY, api_url=fake.url, stage_lists=SENDGRID_STAGE_LISTS,
                        removal=removal, suppression_group=SENDGRID_GROUP, poll_wait_s=0,
                        sleep=no_sleep)
    sync.setup()
    return sync


@pytest.fixture(autouse=True)
def quiet_fake_servers() -> Iterator[None]:
    """The fakes' access log prints request paths, and SendGrid's suppression delete puts
    an email in its path: that is the fake's log, not leadscore's, so it is kept out."""
    import logging

    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)
