"""`purchase_webhook`: one path per shop or payment platform (see the provider registry)."""

from __future__ import annotations

from flask import Request, Response

from leadscore.container import container
from leadscore.http import endpoint
from leadscore.service import purchases  # noqa: F401 - every request records purchases: at cold start
from leadscore.webhook import serve_provider, write_events

IGNORED = "event type not handled; nothing recorded"


@endpoint("purchase_webhook", methods={"POST"})
def purchase_webhook(request: Request) -> Response:
    app = container()
    return serve_provider(request, app, "purchase_webhook",
                          limit=app.settings.purchase_max_bytes, noun="platform",
                          apply=lambda app, result, now: write_events(app, result, now,
                                                                      IGNORED))
