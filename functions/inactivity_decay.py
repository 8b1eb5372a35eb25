"""`inactivity_decay`: the scheduled decay and non-opener job, as a Pub/Sub CloudEvent.

A message that can never succeed is logged and acknowledged (returning normally), so Pub/Sub
does not retry it forever. Any other failure (the store unreachable, a corrupt database) is
one JSON log line, as every other function's, and a 5xx answer, so Pub/Sub retries the
message: an exception left to the framework printed Flask's plain-text traceback instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import flask

from leadscore import logs
from leadscore.container import container
from leadscore.errors import BadRequest
from leadscore.service import scheduled

NAME = "inactivity_decay"


def _event_time(cloud_event: Any, fallback: datetime) -> datetime:
    try:
        value = cloud_event["time"]
        return datetime.fromisoformat(str(value)) if value else fallback
    except (KeyError, ValueError, TypeError):
        return fallback


def inactivity_decay(cloud_event: Any) -> None:
    bound = logs.bind_request(flask.request.headers if flask.has_request_context() else {})
    try:
        _decay(cloud_event)
    except Exception as exc:  # noqa: BLE001 - answered as every endpoint answers a failure
        from leadscore import http  # loaded by a failure only (cold start, issue 20)

        flask.abort(http.failure_response(NAME, exc))
    finally:
        logs.unbind_request(bound)


def _decay(cloud_event: Any) -> None:
    app = container()
    settings = app.settings
    try:
        now, buckets = scheduled.parse_message(cloud_event.data,
                                               _event_time(cloud_event, app.now()))
    except BadRequest as exc:
        logs.error("decay message refused and acknowledged (it can never succeed)",
                   function=NAME, problem=exc.message)
        return

    summary = scheduled.handle(
        app.store, app.rules, now, buckets, inline_limit=settings.decay_inline_limit,
        deadline_s=settings.decay_deadline_s, shard_topic=settings.decay_shard_topic or None,
        publish=app.publish, on_flagged=None)
    # non-openers flagged by this run, its stage changes, and retries of earlier handovers;
    # the email tools' full comparison once per decay run (the tick), not once per shard
    app.dispatch(summary.events, sweep=True, shard=buckets is not None)
    logs.info("decay run", function=NAME, **summary.as_json())
