"""`form_submission`: plain forms and scripts at `/`; form services (Typeform at `/typeform`,
Tally at `/tally`) at the paths the provider registry gives them.

Browsers get CORS for the configured origins and, for classic form posts, a 303 to an
allow-listed thank-you page; scripts get a small JSON acknowledgement. No answer ever says
anything about the lead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Request, Response

from leadscore import logs, pages
from leadscore.container import Container, container
from leadscore.domain import field_map
from leadscore.domain.events import FormSubmitted
from leadscore.errors import BadRequest, Forbidden
from leadscore.http import endpoint, json_response, read_body
from leadscore.providers import web_form
from leadscore.providers.base import ParseResult
from leadscore.service.forms import build_event, submission_key, submit
from leadscore.service.visitors import join_visitor
from leadscore.store.port import VisitorStore
from leadscore.tracking.snippet import ANONYMOUS_ID_FIELD
from leadscore.webhook import serve_provider

ACK = {"status": "ok", "message": "thank you"}


def _listed(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _redirect_to(app: Container, requested: str | None) -> str | None:
    allowed = _listed(app.settings.form_redirect_urls)
    if requested:
        if requested not in allowed:
            raise BadRequest("redirect URL is not in LEADSCORE_FORM_REDIRECT_URLS")
        return requested
    return allowed[0] if allowed else None


def _answer(request: Request, app: Container, requested_redirect: str | None) -> Response:
    wants_json = request.mimetype == "application/json" or (
        request.accept_mimetypes.best_match(["text/html", "application/json"])
        == "application/json")
    target = _redirect_to(app, requested_redirect)
    if target and not wants_json:
        return Response(status=303, headers={"Location": target})
    if pages.wants_html(request):  # a browser's form post with no redirect: a real page
        return pages.thank_you()
    return json_response(200, ACK)


def _form_service(app: Container, result: ParseResult, now: datetime) -> Response:
    """Typeform, Tally and other form services: one signed response, one submission."""
    if not result.events:
        return json_response(200, {"status": "ignored", "message": "not a form response"})
    for event in result.events:
        if isinstance(event, FormSubmitted):
            app.dispatch(submit(app.store, app.rules, event, now).events)
    return json_response(200, ACK)


def _plain(request: Request, app: Container) -> Response:
    settings, now = app.settings, app.now()
    raw = read_body(request, settings.form_max_bytes)
    fields = web_form.read_fields(raw, request.mimetype, request.content_type or "")
    visitor = fields.pop(ANONYMOUS_ID_FIELD, "")  # leadscore.js adds it: join that visitor
    sub = web_form.interpret(fields, request.args.get("form"),
                             field_map.build(settings.form_field_map),
                             _listed(settings.form_honeypots))
    requested = request.args.get("redirect") or sub.redirect
    if sub.honeypot_hit:  # look like a success to the bot; keep nothing
        logs.info("spam submission dropped", function="form_submission", reason="honeypot")
        _redirect_to(app, requested)
        return _answer(request, app, requested)
    if settings.captcha_secret.get_secret_value():
        if not sub.captcha_token:
            raise Forbidden("captcha token missing (cf-turnstile-response or "
                            "g-recaptcha-response)")
        if not app.verify_captcha(sub.captcha_token, request.remote_addr):
            logs.info("spam submission dropped", function="form_submission", reason="captcha")
            raise Forbidden("captcha verification failed")
    _redirect_to(app, requested)  # refuse a bad redirect before writing anything
    window = timedelta(seconds=settings.form_duplicate_window_s)
    header_key = request.headers.get("Idempotency-Key")
    if header_key:
        key, previous = f"idem:{header_key[:200]}", None
    else:
        key, previous = submission_key(sub.email, sub.form_kind, sub.profile, now, window)
    event = build_event("web-form", key, sub.email, sub.form_kind, sub.profile, now)
    result = submit(app.store, app.rules, event, now, also_seen_as=previous, window=window)
    app.dispatch(result.events)
    if visitor.strip() and isinstance(app.store, VisitorStore):
        app.dispatch(join_visitor(app.store, app.store, app.rules, visitor, event.email, now,
                                  timedelta(days=settings.track_visitor_days)).events)
    return _answer(request, app, requested)


@endpoint("form_submission", methods={"POST"}, pages_for_browsers=True)
def _handle(request: Request) -> Response:
    app = container()
    if request.path.strip("/"):
        return serve_provider(request, app, "form_submission", limit=app.settings.form_max_bytes,
                              noun="form service", apply=_form_service)
    return _plain(request, app)


def form_submission(request: Request) -> Response:
    app = container()
    origin = request.headers.get("Origin")
    allowed = _listed(app.settings.form_allowed_origins)
    cors = bool(origin) and (origin in allowed or "*" in allowed)
    if request.method == "OPTIONS":
        if not cors:
            return json_response(403, {"error": "forbidden",
                                       "message": "origin not in LEADSCORE_FORM_ALLOWED_ORIGINS"})
        response = Response(status=204, headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
            "Access-Control-Max-Age": "600"})
    else:
        response = _handle(request)
    if cors and origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response
