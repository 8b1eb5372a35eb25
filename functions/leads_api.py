"""`leads_api`: read leads, their history, non-openers; erase a lead. Bearer token.

Routes are declared once (werkzeug's `Map`); query parameters are pydantic models
(`leadscore.service.api_params`), so a bad one is a 400 naming it.
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
from leadscore.domain.state import LeadState
from leadscore.errors import MethodNotAllowed, NotFound
from leadscore.http import endpoint, json_response
from leadscore.providers import canonical
from leadscore.service.api_params import HistoryQuery, encode_cursor, lead_filters, parse_query
from leadscore.service.leads import HISTORY_SHOWN, describe, find_lead, history_line, summary

NON_OPENER_COLUMNS = ["lead_id", "email", "non_opener_since", "last_sent_at", "last_open_at",
                      "email_status"]
ROUTES = Map([
    Rule("/leads", endpoint="list", methods=["GET"]),
    Rule("/leads/<key>", endpoint="show", methods=["GET"]),
    Rule("/leads/<key>", endpoint="erase", methods=["DELETE"]),
    Rule("/leads/<key>/history", endpoint="history", methods=["GET"]),
    Rule("/non-openers", endpoint="non_openers", methods=["GET"]),
], merge_slashes=False, strict_slashes=False)
USAGE = "use /leads, /leads/{email-or-id}, /leads/{id}/history or /non-openers"


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


def _lead(app: Container, key: str) -> LeadState:
    lead = find_lead(app.store, key)
    if lead is None:
        raise NotFound("no lead with that email or id")
    return lead


def _show(request: Request, app: Container, key: str) -> Response:
    lead = _lead(app, key)
    history = app.store.history(lead.lead_id, limit=HISTORY_SHOWN)
    return json_response(200, describe(lead, history, app.rules, app.now()))


def _history(request: Request, app: Container, key: str) -> Response:
    lead = _lead(app, key)
    limit = parse_query(HistoryQuery, request.args).limit
    return json_response(200, {"lead_id": lead.lead_id, "history": [
        history_line(e) for e in app.store.history(lead.lead_id, limit=limit)]})


def _erase(request: Request, app: Container, key: str) -> Response:
    """Erase by any spelling of the address or by id, and keep a tombstone so late events
    never bring the lead back (service/erasure.py). An address with nothing stored still
    gets its tombstone (a 404 says nothing was deleted)."""
    from leadscore.service.erasure import erase_address  # erasures are rare: loaded by one

    lead = find_lead(app.store, key)
    if "@" in key:
        found = erase_address(app.store, key, app.now(),
                              found_id=lead.lead_id if lead else None,
                              crm_tools=app.crm_tools())
    elif lead is not None:
        found = erase_address(app.store, lead.email, app.now(), found_id=lead.lead_id,
                              crm_tools=app.crm_tools())
    else:  # an id only: whatever is left under it (history without a lead document)
        found = app.store.erase(key, erased_at=app.now())
    if not found:
        raise NotFound("no lead with that email or id")
    app.erase_in_crm_soon()  # the CRM contact too, after the answer (service/crm_erasure.py)
    return json_response(200, {"status": "erased",
                               "lead_id": lead.lead_id if lead else key})


HANDLERS: dict[str, Callable[..., Response]] = {
    "list": _list, "show": _show, "erase": _erase, "history": _history,
    "non_openers": _non_openers}


@endpoint("leads_api", methods={"GET", "DELETE"})
def leads_api(request: Request) -> Response:
    app = container()
    canonical.verify_bearer(request.headers.get("Authorization"), app.settings.api_tokens())
    path = "/" + "/".join(p for p in request.path.split("/") if p)  # `//leads/` is `/leads`
    try:
        name, arguments = ROUTES.bind("localhost").match(path, method=request.method)
    except NoSuchMethod:
        raise MethodNotAllowed("use GET /leads/{id}, GET /leads/{id}/history or DELETE "
                               "/leads/{id}") from None
    except NoSuchRoute:
        raise NotFound(USAGE) from None
    return HANDLERS[str(name)](request, app, **arguments)
