"""`ingest`: canonical events as JSON from other systems (POST, bearer token)."""

from __future__ import annotations

from flask import Request, Response

from leadscore.container import container
from leadscore.http import endpoint, json_response, read_body, require_json
from leadscore.providers import canonical
from leadscore.service.ingest import ingest as ingest_events


@endpoint("ingest", methods={"POST"})
def ingest(request: Request) -> Response:
    app = container()
    canonical.verify_bearer(request.headers.get("Authorization"), app.settings.api_tokens())
    require_json(request)
    events = canonical.parse(read_body(request, app.settings.ingest_max_bytes))
    result = ingest_events(app.store, app.rules, events, app.now())
    app.dispatch(result.events)
    return json_response(200, {"status": "ok", **result.summary()})
