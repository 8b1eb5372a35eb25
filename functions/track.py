"""`track`: Segment's HTTP Tracking API (`/v1/{identify,track,page,screen,group,alias,batch}`
and the browser library's `/v1/{i,t,p,s,g,a,b}`) and the `leadscore.js` snippet (GET).

Write keys and CORS are in `leadscore.tracking.auth`, the messages' meaning in
`leadscore.tracking.mapping`, and the writes in `leadscore.service.visitors`. A batch with
some bad messages is answered 200 listing the refused ones (the browser library drops a
whole batch on a 4xx); a single bad message is a 400.
"""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import Any

from flask import Request, Response

from leadscore import jsonfmt
from leadscore.container import Container, container
from leadscore.domain import field_map
from leadscore.domain.visitors import Tracked
from leadscore.errors import (
    BadRequest,
    ConfigError,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)
from leadscore.http import endpoint, json_response, read_body
from leadscore.providers.json_body import parse_json
from leadscore.service.visitors import price_full_refund, record
from leadscore.store.port import VisitorStore
from leadscore.tracking import auth, snippet
from leadscore.tracking.mapping import Policy, Refusal, map_message
from leadscore.tracking.message import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, SHORT, TYPES


def _listed(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _call(path: str) -> str:
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "v1":
        name = SHORT.get(parts[1], parts[1])
        if name in (*TYPES, "batch"):
            return name
    raise NotFound(f"no tracking call at {path}; use /v1/identify, /v1/track, /v1/page, "
                   "/v1/screen, /v1/group, /v1/alias or /v1/batch")


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Inflate at most `limit` bytes (a small bomb must not become a huge body)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise BadRequest("body is not valid gzip") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes once inflated")
    return body


def _policy(app: Container, caller: auth.Caller) -> Policy:
    website = app.rules.website
    mapping = field_map.build(app.settings.form_field_map)
    names = _listed(app.settings.track_client_events) or list(website.events)
    return Policy(caller=caller.kind, website=website, client_events=frozenset(names),
                  field_mapping=mapping,
                  profile_fields=frozenset(set(field_map.DEFAULT_ALIASES) | set(mapping.values())),
                  captcha_required=bool(app.settings.captcha_secret.get_secret_value()))


def _messages(call: str, data: dict[str, Any]) -> tuple[list[Any], Any]:
    if call != "batch":
        return [data], None
    # only a batch loads marshmallow (its wire schema); a single message is read without it
    # when it is plainly valid (leadscore.tracking.message), which keeps it out of cold starts
    from marshmallow import ValidationError

    from leadscore.tracking.wire import BATCH

    try:
        batch = BATCH.load(data)
    except ValidationError as exc:
        raise ValidationFailed(f"not a batch: {exc.messages}") from None
    shared = batch["context"]  # applies to every call of the batch (Segment's batch docs)
    return [_with_context(m, shared) for m in batch["batch"]], batch.get("sentAt")


def _with_context(message: Any, shared: dict[str, Any]) -> Any:
    """A batch's `context` under a message's own (whose keys win). A batch's `integrations`
    would go the same way, but no message's is read here (the field is dropped)."""
    if not shared or not isinstance(message, dict):
        return message
    own = message.get("context")
    if own is None:
        return {**message, "context": shared}
    return {**message, "context": {**shared, **own}} if isinstance(own, dict) else message


def _post(request: Request, app: Container) -> Response:
    call = _call(request.path)
    limit = MAX_BATCH_BYTES if call == "batch" else MAX_MESSAGE_BYTES
    raw = read_body(request, limit)
    if request.headers.get("Content-Encoding", "").lower() == "gzip":  # RudderStack's SDKs
        raw = _gunzip(raw, limit)
    data = parse_json(raw)  # JSON whether sent as application/json or text/plain
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    server_keys, client_keys = app.settings.track_keys()
    key = (auth.basic_username(request.headers.get("Authorization"))
           or request.headers.get("X-Write-Key") or data.get("writeKey"))
    caller = auth.identify_caller(key if isinstance(key, str) else None, server_keys,
                                  client_keys, request.headers.get("Origin"),
                                  _listed(app.settings.track_allowed_origins))
    auth.check_call(caller, call)
    store = app.store
    if not isinstance(store, VisitorStore):
        raise ConfigError("this store keeps no visitor records")
    policy, now = _policy(app, caller), app.now()
    messages, sent_at = _messages(call, data)
    tracked: list[Tracked] = []
    refused: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        try:
            item = map_message(message, call, sent_at, now, policy, index)
            tracked.append(_priced(store, item) if item.full_refund else item)
        except Refusal as exc:
            mid = message.get("messageId") if isinstance(message, dict) else None
            refused.append({"index": index, "messageId": mid, "problem": str(exc)})
    if call != "batch" and refused:
        raise BadRequest(f"message refused: {refused[0]['problem']}", details=refused)
    result = record(store, store, app.rules, tracked, now,
                    timedelta(days=app.settings.track_visitor_days))
    app.dispatch(result.events)
    return json_response(200, {"success": True, "accepted": len(tracked), "refused": refused})


def _priced(store: Any, item: Tracked) -> Tracked:
    """A full refund (`Order Refunded` without an amount) of the order's recorded amount."""
    priced = price_full_refund(store, item)
    if priced is None:
        raise Refusal("Order Refunded without an amount refunds its whole order, and no "
                      "paid order of this order_id is recorded")
    return priced


@endpoint("track", methods={"GET", "HEAD", "POST"})
def _handle(request: Request) -> Response:
    app = container()
    if request.method in ("GET", "HEAD"):
        return snippet.serve(request.path.strip("/").rsplit("/", 1)[-1],
                             request.headers.get("If-None-Match"))
    return _post(request, app)


def track(request: Request) -> Response:
    app = container()
    origin = request.headers.get("Origin")
    cors = auth.cors_headers(origin, _listed(app.settings.track_allowed_origins))
    if request.method == "OPTIONS":
        if not cors:
            return json_response(403, {"error": "forbidden", "code": "forbidden", "message":
                                       "origin not in LEADSCORE_TRACK_ALLOWED_ORIGINS"})
        return Response(status=204, headers={**auth.PREFLIGHT, **cors})
    response = _with_code(_handle(request))
    response.headers.update(cors)
    return response


def _with_code(response: Response) -> Response:
    """An error body also names its error as `code`: RudderStack's Python SDK reads
    `code` and `message` of a 4xx body, and without `code` it failed with a KeyError, which
    it then retried as if the network had failed (a wrong key was sent again and again)."""
    if response.status_code >= 400 and response.mimetype == "application/json":
        body = response.get_json(silent=True)
        if isinstance(body, dict) and "error" in body and "code" not in body:
            response.set_data(jsonfmt.dumps({**body, "code": body["error"]}))
    return response
