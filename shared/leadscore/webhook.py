"""The one way a provider's request is served: look up, read, verify, parse, write, answer.

Entry points name a function, never a provider; the registry says which provider serves a
path. Everything that differs between providers lives in their module.

The acknowledgement rule: only an unauthenticated (401) or unparseable (400) request is
refused. A verified request carrying nothing we score, or only types we do not know, is
answered 200 `{"status": "ignored", ...}`; an email provider's verified payload whose fields
are wrong (a wrong JSON type, an invalid address), and a purchase platform's, are acknowledged
the same way (naming the bad fields), because the
provider would send it again and again (or disable the endpoint) and it can never succeed.
Either way one log line names the provider and the ignored types, never an address. An item
dated more than an hour ahead is dropped alone, as "future" (our own `/ingest` answers 422
instead: its caller can be told). Store failures stay 5xx, so the sender retries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Request, Response

from leadscore import logs
from leadscore.container import Container
from leadscore.errors import NotFound, Unauthorized, ValidationFailed
from leadscore.http import json_response, lower_headers, read_body, require_json
from leadscore.providers.base import Inbound, ParseResult, Provider
from leadscore.providers.registry import REGISTRY
from leadscore.service.ingest import ingest, without_future

# A verified request whose payload has the wrong JSON types (a string where an object
# belongs, a number out of range, an invalid address inside an object a schema passed):
# the provider signed it and would retry a 5xx for days, so it is acknowledged and logged.
UNPARSEABLE = (TypeError, ValueError, KeyError, AttributeError, IndexError, ArithmeticError)

# What to do with a verified, parsed request that names events or purchases.
Apply = Callable[[Container, ParseResult, datetime], Response]

# Functions whose providers' verified-but-invalid payloads are acknowledged (200, ignored,
# the bad fields named in the answer and the log) rather than refused with 422. Email
# providers resend for hours or disable the endpoint; payment platforms (Stripe, Shopify,
# WooCommerce) retry for days and then disable it, form services (Typeform, Tally) retry and
# disable too, and a sender of the generic format that signed the payload is ours to fix,
# not to retry. Plain web forms are not providers: they keep their 422s. Unsigned payloads
# never get this far (401), so a stranger still learns nothing and writes nothing.
ACKNOWLEDGE_INVALID = frozenset({"email_webhook", "purchase_webhook", "form_submission"})


def find_provider(function: str, path: str, noun: str) -> Provider:
    """The provider at this path, or a 404 naming the ones there are (not the path asked
    for: a stranger's path is free text, and the refusal is logged)."""
    provider = REGISTRY.lookup(function, path)
    if provider is None:
        known = ", ".join(p.strip("/") for p in REGISTRY.paths(function))
        raise NotFound(f"unknown {noun}: use {known}")
    return provider


def write_events(app: Container, result: ParseResult, now: datetime,
                 ignored: str) -> Response:
    """Email and purchase webhooks: ingest events, record purchases, or acknowledge."""
    body: dict[str, Any]
    if result.purchases:  # purchase_webhook imports this path at its cold start (issue 20)
        from leadscore.service.purchases import record_purchases

        purchased = record_purchases(app.store, app.rules, result.purchases, now)
        happened = purchased.events
        body = {"status": "ok", **purchased.body()}
    elif result.events:
        events, future = without_future(result.events, now)
        if future:  # named below; the rest of the batch still counts
            result.ignored.extend(["future"] * future)
            logs.info("webhook items ignored", types={"future": future}, scored=len(events))
        if events:
            ingested = ingest(app.store, app.rules, events, now)
            happened = ingested.events
            body = {"status": "ok", **ingested.summary()}
        else:
            body, happened = {"status": "ignored", "message": ignored}, []
    else:
        body, happened = {"status": "ignored", "message": ignored}, []
    if result.ignored:  # named, so a sender's operator can see what we did not score
        body["ignored"] = dict(Counter(result.ignored))
    if happened:
        app.dispatch(happened)
    return json_response(200, body)


def log_ignored(provider: Provider, function: str, result: ParseResult) -> None:
    """One line per request that acknowledged something without scoring it."""
    nothing = not (result.events or result.purchases or result.move)
    if result.ignored or nothing:
        types = dict(Counter(result.ignored)) if result.ignored else {"(nothing)": 1}
        # labels are ours (`email_events.kind_label`); scrubbing the keys too is the backstop
        logs.info("webhook items ignored", provider=provider.name, function=function,
                  types=types, scored=len(result.events) + len(result.purchases))


def serve_provider(request: Request, app: Container, function: str, *, limit: int,
                   noun: str, apply: Apply) -> Response:
    provider = find_provider(function, request.path, noun)
    if request.method not in provider.methods:
        raise NotFound("this provider only " + " or ".join(
            f"{m}s" for m in sorted(provider.methods)))
    raw = read_body(request, min(limit, provider.max_body or limit))
    inbound = Inbound(raw, lower_headers(request), dict(request.args.items()), request.method)
    early = provider.handshake(inbound)  # unsigned pings, answered before any check
    if early is not None:
        return json_response(early.status, early.body)
    if provider.json_body:
        require_json(request)
    now = app.now()
    provider.verify(inbound, REGISTRY.secrets(provider, app.settings), now, app)
    try:
        result = provider.parse(inbound, app.settings, app)
    except ValidationFailed as exc:
        if function not in ACKNOWLEDGE_INVALID:
            raise
        fields = [str(d.get("field", "")) for d in exc.details][:20]
        logs.warning("webhook payload ignored", provider=provider.name, function=function,
                     types={"invalid": 1}, fields=fields)
        return json_response(200, {"status": "ignored", "reason": "invalid",
                                   "message": exc.message, "details": exc.details})
    except UNPARSEABLE as exc:  # signed but not what we expect: a 5xx would be retried
        logs.warning("signed payload ignored", provider=provider.name,
                     problem=type(exc).__name__)
        return json_response(200, {"status": "ignored",
                                   "message": "signed payload of an unexpected shape"})
    if result.reply is not None:
        return json_response(result.reply.status, result.reply.body)
    for claim in result.claims:
        if not app.store.claim_token(claim.key, claim.owner, now + claim.kept):
            raise Unauthorized("signature token already used by another request (replay)")
    log_ignored(provider, function, result)  # a replay is refused above, not acknowledged
    if result.move is not None:  # an address change (rare): its code loads when one comes
        from leadscore.service.moves import move_lead

        moved = move_lead(app.store, app.rules, result.move.old_email, result.move.new_email,
                          now)
        return json_response(200, {"status": "ok", "moved_events": moved})
    return apply(app, result, now)
