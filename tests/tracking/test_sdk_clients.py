"""Real clients nobody here wrote: Segment's analytics-python and RudderStack's Python SDK,
pointed at a real local server, send identify, track, page and batch calls; the lead shows
them, and their retries after a lost response count once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from leadscore.domain.identity import lead_id_for

from .conftest import SERVER_KEY

EMAIL = "erin.walsh@contoso-retail.com"
LEAD = lead_id_for(EMAIL)


def _activities(app: Any) -> list[str]:
    return sorted(e.event.get("activity", e.kind) for e in app.store.history(LEAD))


def test_segment_analytics_python_batch_and_retry(live_server: dict[str, Any]) -> None:
    from segment.analytics import Client

    errors: list[Any] = []
    # GIVEN Segment's library with the server key, batching in its own thread
    client = Client(write_key=SERVER_KEY, host=live_server["base"] + "/track",
                    on_error=lambda e, batch: errors.append(e), max_retries=3,
                    upload_interval=0.1)
    # AND the server loses its first response (the writes happened): the library retries
    live_server["lossy"].lose = {1}
    started = datetime.now(UTC) - timedelta(days=2)
    # WHEN it identifies a user, then tracks and pages
    client.identify("cust-311", {"email": EMAIL, "company": "Contoso", "title": "VP Sales"},
                    timestamp=started)
    client.track("cust-311", "Trial Started", {"plan": "team"},
                 timestamp=started + timedelta(hours=1))
    client.page("cust-311", "Docs", "Pricing", {"path": "/pricing", "url":
                                                "https://contoso.example/pricing"})
    client.flush()
    client.join()
    # THEN the lost response was retried, no error reached the library, and the lead
    # shows each call once
    assert live_server["lossy"].seen >= 2 and errors == []
    assert _activities(live_server["app"]) == ["identified", "pricing_page_visit",
                                               "trial_started"]
    lead = live_server["app"].store.get_lead(LEAD)
    assert lead.profile["job_title"] == "VP Sales"
    trial = next(e for e in live_server["app"].store.history(LEAD)
             if e.event["activity"] == "trial_started")
    assert abs(trial.at - (started + timedelta(hours=1))) < timedelta(seconds=5)


def test_rudder_sdk_python_gzip_batches_and_retry(live_server: dict[str, Any]) -> None:
    import rudderstack.analytics as rudder_analytics

    logging.getLogger("rudderstack").setLevel(logging.CRITICAL)  # no backoff chatter
    errors: list[Any] = []
    client = rudder_analytics.Client(write_key=SERVER_KEY,
                                     host=live_server["base"] + "/track",
                                     on_error=lambda e, batch: errors.append(e),
                                     max_retries=3, upload_interval=0.1, gzip=True)
    live_server["lossy"].lose = {1}
    # WHEN an anonymous visitor pages, then is identified with the same anonymous id
    client.page(anonymous_id="rs-anon-1", name="Pricing",
                properties={"path": "/pricing/enterprise"})
    client.track(anonymous_id="rs-anon-1", event="Webinar Attended")
    client.flush()
    client.join()
    assert live_server["app"].store.get_lead(LEAD) is None
    client2 = rudder_analytics.Client(write_key=SERVER_KEY,
                                      host=live_server["base"] + "/track",
                                      on_error=lambda e, batch: errors.append(e),
                                      upload_interval=0.1)
    client2.identify(user_id="rs-user-1", anonymous_id="rs-anon-1", traits={"email": EMAIL})
    client2.flush()
    client2.join()
    # THEN the lost response was retried, and the earlier anonymous calls are on the lead,
    # once each
    assert live_server["lossy"].seen >= 3 and errors == []
    assert _activities(live_server["app"]) == ["identified", "pricing_page_visit",
                                               "webinar_attended"]


def test_rudder_sdk_python_does_not_retry_a_wrong_key(live_server: dict[str, Any]) -> None:
    from rudderstack.analytics.consumer import Consumer
    from rudderstack.analytics.request import APIError

    logging.getLogger("rudderstack").setLevel(logging.CRITICAL)
    # GIVEN RudderStack's consumer with a wrong write key and three retries
    consumer = Consumer(None, "wrong-key", host=live_server["base"] + "/track", retries=3)
    # WHEN it sends a batch
    try:
        consumer.request([{"type": "track", "userId": "u1", "event": "Demo Requested",
                           "messageId": "rs-wrong-1", "timestamp": "2026-11-23T10:00:00Z"}])
    except APIError as exc:  # the SDK's own error for a 4xx it reads: not retried
        refused: Exception = exc
    # THEN the SDK reads our 401 body as an API error (it read payload['code']: a KeyError
    # before, which it retried as a network failure), and sent it once
    assert isinstance(refused, APIError) and refused.status == 401
    assert live_server["lossy"].seen == 1
