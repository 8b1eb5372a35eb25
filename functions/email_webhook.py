"""`email_webhook`: one path per email provider (see the provider registry); verify, parse,
apply lead by lead."""

from __future__ import annotations

from flask import Request, Response

from leadscore.container import container
from leadscore.http import endpoint
from leadscore.webhook import serve_provider, write_events

IGNORED = "no event we score"


@endpoint("email_webhook", methods={"POST", "GET", "HEAD"})
def email_webhook(request: Request) -> Response:
    app = container()
    return serve_provider(request, app, "email_webhook", limit=app.settings.email_max_bytes,
                          noun="provider",
                          apply=lambda app, result, now: write_events(app, result, now,
                                                                      IGNORED))
