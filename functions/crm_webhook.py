"""`crm_webhook`: what the CRM says about deals (HubSpot, see the provider registry) becomes
sales outcomes on the deal's leads."""

from __future__ import annotations

from flask import Request, Response

from leadscore.container import container
from leadscore.http import endpoint
from leadscore.webhook import serve_provider, write_events

IGNORED = "no deal change we record"


@endpoint("crm_webhook", methods={"POST"})
def crm_webhook(request: Request) -> Response:
    app = container()
    return serve_provider(request, app, "crm_webhook", limit=app.settings.purchase_max_bytes,
                          noun="CRM",
                          apply=lambda app, result, now: write_events(app, result, now,
                                                                      IGNORED))
