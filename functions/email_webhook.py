"""`email_webhook`: one path per email provider; verify, parse, apply lead by lead."""

from __future__ import annotations

from flask import Request, Response

from leadscore.container import Container, container
from leadscore.domain.events import Event
from leadscore.errors import NotFound, Unauthorized
from leadscore.http import endpoint, json_response, lower_headers, read_body, require_json
from leadscore.providers import brevo, mailchimp, mailgun, postmark, sendgrid, ses
from leadscore.providers.signing import secrets
from leadscore.service.ingest import ingest
from leadscore.service.moves import move_lead

PROVIDERS = ("sendgrid", "mailgun", "mailchimp", "postmark", "ses", "brevo")


def _secret(app: Container, name: str) -> list[str]:
    return secrets(getattr(app.settings, name).get_secret_value())


def _ses(app: Container, raw: bytes) -> list[Event] | Response:
    message = ses.parse_envelope(raw)
    ses.verify(message, secrets(app.settings.ses_topic_arns), app.fetch_sns_certificate,
               app.now())
    if message["Type"] == "SubscriptionConfirmation":
        arn = app.confirm_sns_subscription(message["TopicArn"], str(message.get("Token")))
        return json_response(200, {"status": "ok", "message": "subscription confirmed",
                                   "subscription_arn": arn})
    if message["Type"] == "UnsubscribeConfirmation":
        return json_response(200, {"status": "ignored", "message": "unsubscribed from topic"})
    return ses.parse(message)


@endpoint("email_webhook", methods={"POST", "GET"})
def email_webhook(request: Request) -> Response:
    app = container()
    provider, now = request.path.strip("/"), app.now()
    if provider not in PROVIDERS:
        raise NotFound(f"unknown provider {provider!r}: use " + ", ".join(PROVIDERS))
    if provider == "mailchimp":
        mailchimp.verify(request.args.get("key"), _secret(app, "mailchimp_secret"))
        if request.method == "GET":  # Mailchimp's check when the webhook is saved
            return json_response(200, {"status": "ok"})
    elif request.method == "GET":
        raise NotFound("this provider only POSTs")
    raw = read_body(request, app.settings.email_max_bytes)
    headers = lower_headers(request)
    events: list[Event]
    if provider == "sendgrid":
        require_json(request)
        sendgrid.verify(raw, headers, _secret(app, "sendgrid_public_key"), now)
        events = sendgrid.parse(raw)
    elif provider == "mailgun":
        require_json(request)
        token = mailgun.verify(raw, _secret(app, "mailgun_signing_key"), now)
        events = mailgun.parse(raw)
        if not app.store.claim_token(f"mailgun:{token}", mailgun.event_id(raw)):
            raise Unauthorized("signature token already used by another request (replay)")
    elif provider == "mailchimp":
        events, move = mailchimp.parse(raw)
        if move is not None:
            moved = move_lead(app.store, app.rules, move.old_email, move.new_email, now)
            return json_response(200, {"status": "ok", "moved_events": moved})
    elif provider == "brevo":
        require_json(request)
        brevo.verify(request.headers.get("Authorization"), _secret(app, "brevo_token"))
        events = brevo.parse(raw)
    elif provider == "postmark":
        require_json(request)
        postmark.verify(request.headers.get("Authorization"), _secret(app,
                                                                       "postmark_basic_auth"))
        events = postmark.parse(raw)
    else:  # SNS posts JSON as text/plain
        parsed = _ses(app, raw)
        if isinstance(parsed, Response):
            return parsed
        events = parsed
    if not events:
        return json_response(200, {"status": "ignored", "message": "no event we score"})
    result = ingest(app.store, app.rules, events, now)
    if result.stage_changes:
        app.hand_over()
    return json_response(200, {"status": "ok", **result.summary()})
