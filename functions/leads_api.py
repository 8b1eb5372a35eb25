"""`leads_api`: read leads, their history, non-openers; erase a lead. Bearer token.

Routes are declared once (werkzeug's `Map`); query parameters and bodies are pydantic models
(`leadscore.service.api_params`), so a bad one is a 400 naming it. A URL names a lead by its
id only: request logs (Cloud Run's too) keep every URL in clear, so an address travels in a
POST body (`/leads/lookup`, `/leads/erase`), and a path that holds anything but an id is a
400 before anything is looked up.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from flask import Request, Response
from werkzeug.exceptions import MethodNotAllowed as NoSuchMethod
from werkzeug.exceptions import NotFound as NoSuchRoute
from werkzeug.routing import Map, Rule

from leadscore.container import Container, container
from leadscore.domain.identity import is_lead_id, lead_id_for
from leadscore.domain.state import LeadState
from leadscore.errors import BadRequest, MethodNotAllowed, NotFound
from leadscore.http import endpoint, json_response, read_body, require_json
from leadscore.providers import canonical
from leadscore.service.api_params import (
    ADDRESS_BODY_BYTES,
    HistoryQuery,
    address_in,
    encode_cursor,
    lead_filters,
    parse_query,
)
from leadscore.service.leads import describe, find_lead, history_line, shown, summary

NON_OPENER_COLUMNS = ["lead_id", "email", "non_opener_since", "last_sent_at", "last_open_at",
                      "email_status"]
ROUTES = Map([
    Rule("/leads", endpoint="list", methods=["GET"]),
    Rule("/leads/lookup", endpoint="lookup", methods=["POST"]),
    Rule("/leads/erase", endpoint="erase_address", methods=["POST"]),
    Rule("/leads/<key>", endpoint="show", methods=["GET"]),
    Rule("/leads/<key>", endpoint="erase", methods=["DELETE"]),
    Rule("/leads/<key>/history", endpoint="history", methods=["GET"]),
    Rule("/non-openers", endpoint="non_openers", methods=["GET"]),
], merge_slashes=False, strict_slashes=False)
USAGE = ("use GET /leads, GET /leads/{id}, GET /leads/{id}/history, GET /non-openers, "
         "POST /leads/lookup, POST /leads/erase or DELETE /leads/{id}")
BY_ADDRESS = 'POST /leads/lookup (or /leads/erase) with {"email": "..."}'


def _non_openers(request: Request, app: Container) -> Response:
    leads = app.store.list_leads(non_opener=True, limit=100_000)
    rows = [{c: getattr(x, c) for c in NON_OPENER_COLUMNS} for x in leads]
    wants_csv = request.args.get("format") == "csv" or (
        "format" not in request.args and request.accept_mimetypes.best_match(
            ["application/json", "text/csv"]) == "text/csv")
    if not wants_csv:
        return json_response(200, {"non_openers": rows})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=NON_OPENER_COLUMNS)
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return Response(out.getvalue(), mimetype="text/csv")


def _cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: an address may begin with "=", "+", "-" or
    "@" (valid in a local part), which Excel and Sheets would run as a formula (OWASP's
    CSV injection); a leading apostrophe makes it text."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _list(request: Request, app: Container) -> Response:
    filters = lead_filters(request.args)
    page = app.store.list_leads(**filters)
    last = page[-1] if len(page) == filters["limit"] else None
    return json_response(200, {
        "leads": [summary(x) for x in page],
        "next_cursor": encode_cursor(last.score, last.lead_id) if last else None})


def _lead_id(key: str) -> str:
    """The lead id a path names, or a 400 pointing to the address routes. Nothing is looked
    up for anything else (an address, `__x__`, `..`, 2,000 characters): the answer is the
    same whatever is stored, and no such text reaches a Firestore document path."""
    if "@" in key or "%40" in key.lower():
        raise BadRequest("an address never goes in a URL (request logs keep every URL): "
                         + BY_ADDRESS)
    if not is_lead_id(key):
        raise BadRequest("not a lead id (l_ and 32 hex digits); to find a lead by its "
                         "address, " + BY_ADDRESS)
    return key


def _address(request: Request) -> str:
    """The address of a `{"email": "..."}` body (JSON, at most `ADDRESS_BODY_BYTES`)."""
    require_json(request)
    return address_in(read_body(request, ADDRESS_BODY_BYTES))


def _by_id(app: Container, key: str) -> LeadState:
    lead = app.store.get_lead(_lead_id(key))
    if lead is None:
        raise NotFound("no lead with that id")
    return lead


def _described(app: Container, lead: LeadState) -> Response:
    now = app.now()
    current, history = shown(app.store, lead, app.rules, now)
    return json_response(200, describe(current, history, app.rules, now))


def _show(request: Request, app: Container, key: str) -> Response:
    return _described(app, _by_id(app, key))


def _lookup(request: Request, app: Container) -> Response:
    """`POST /leads/lookup` `{"email": ...}`: the lead of any spelling of the address, as
    `GET /leads/{id}` answers (its `lead_id` then names it in URLs: history pages, erasure)."""
    lead = find_lead(app.store, _address(request))
    if lead is None:
        raise NotFound("no lead with that address")
    return _described(app, lead)


def _history(request: Request, app: Container, key: str) -> Response:
    lead = _by_id(app, key)
    limit = parse_query(HistoryQuery, request.args).limit
    return json_response(200, {"lead_id": lead.lead_id, "history": [
        history_line(e) for e in app.store.history(lead.lead_id, limit=limit)]})


def _erase(request: Request, app: Container, key: str) -> Response:
    """`DELETE /leads/{id}`: erase the lead by its stored address (every id it has, a
    tombstone so late events never bring it back, the CRM contact: service/erasure.py); an
    id without a lead document: whatever is left under it (history without its lead)."""
    from leadscore.service.erasure import erase_address  # erasures are rare: loaded by one

    lead_id = _lead_id(key)
    lead = app.store.get_lead(lead_id)
    if lead is not None:
        found = erase_address(app.store, lead.email, app.now(), found_id=lead.lead_id,
                              crm_tools=app.crm_tools())
    else:
        found = app.store.erase(lead_id, erased_at=app.now())
    return _erased(app, found, lead_id, "no lead with that id")


def _erase_address(request: Request, app: Container) -> Response:
    """`POST /leads/erase` `{"email": ...}`: erase by any spelling of the address, the same
    call `DELETE` makes. An address with nothing stored still gets its tombstone (a 404 says
    nothing was deleted; its CRM erasure record is then forgotten: `crm_erasure.release`)."""
    from leadscore.service.erasure import erase_address

    email = _address(request)
    lead = find_lead(app.store, email)
    found = erase_address(app.store, email, app.now(), found_id=lead.lead_id if lead else None,
                          crm_tools=app.crm_tools())
    return _erased(app, found, lead.lead_id if lead else lead_id_for(email),
                   "no lead with that address")


def _erased(app: Container, found: bool, lead_id: str, missing: str) -> Response:
    if not found:
        raise NotFound(missing)
    app.erase_in_crm_soon()  # the CRM contact too, after the answer (service/crm_erasure.py)
    return json_response(200, {"status": "erased", "lead_id": lead_id})


HANDLERS: dict[str, Callable[..., Response]] = {
    "list": _list, "show": _show, "lookup": _lookup, "erase": _erase,
    "erase_address": _erase_address, "history": _history, "non_openers": _non_openers}


@endpoint("leads_api", methods={"GET", "POST", "DELETE"})
def leads_api(request: Request) -> Response:
    app = container()
    canonical.verify_bearer(request.headers.get("Authorization"), app.settings.api_tokens())
    path = "/" + "/".join(p for p in request.path.split("/") if p)  # `//leads/` is `/leads`
    try:
        name, arguments = ROUTES.bind("localhost").match(path, method=request.method)
    except NoSuchMethod:
        raise MethodNotAllowed(f"{request.method} is not allowed here; {USAGE}") from None
    except NoSuchRoute:
        raise NotFound(USAGE) from None
    return HANDLERS[str(name)](request, app, **arguments)
