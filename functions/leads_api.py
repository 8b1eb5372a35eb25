"""`leads_api`: read leads, their history, non-openers; erase a lead. Bearer token."""

from __future__ import annotations

import csv
import io

from flask import Request, Response

from leadscore.container import container
from leadscore.errors import MethodNotAllowed, NotFound
from leadscore.http import endpoint, json_response
from leadscore.providers import canonical
from leadscore.service.api_params import encode_cursor, history_limit, lead_filters
from leadscore.service.leads import HISTORY_SHOWN, describe, find_lead, history_line, summary

NON_OPENER_COLUMNS = ["lead_id", "email", "non_opener_since", "last_sent_at", "last_open_at",
                      "email_status"]


def _non_openers(request: Request) -> Response:
    app = container()
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
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return Response(out.getvalue(), mimetype="text/csv")


@endpoint("leads_api", methods={"GET", "DELETE"})
def leads_api(request: Request) -> Response:
    app = container()
    canonical.verify_bearer(request.headers.get("Authorization"), app.settings.api_tokens())
    parts = [p for p in request.path.split("/") if p]
    if parts == ["non-openers"] and request.method == "GET":
        return _non_openers(request)
    if parts == ["leads"] and request.method == "GET":
        filters = lead_filters(request.args)
        page = app.store.list_leads(**filters)
        last = page[-1] if len(page) == filters["limit"] else None
        return json_response(200, {
            "leads": [summary(x) for x in page],
            "next_cursor": encode_cursor(last.score, last.lead_id) if last else None})
    if len(parts) in (2, 3) and parts[0] == "leads":
        lead = find_lead(app.store, parts[1])
        if lead is None:
            raise NotFound("no lead with that email or id")
        if len(parts) == 3 and parts[2] == "history" and request.method == "GET":
            limit = history_limit(request.args)
            return json_response(200, {"lead_id": lead.lead_id, "history": [
                history_line(e) for e in app.store.history(lead.lead_id, limit=limit)]})
        if len(parts) == 2 and request.method == "GET":
            history = app.store.history(lead.lead_id, limit=HISTORY_SHOWN)
            return json_response(200, describe(lead, history, app.rules, app.now()))
        if len(parts) == 2 and request.method == "DELETE":
            app.store.erase(lead.lead_id)
            return json_response(200, {"status": "erased", "lead_id": lead.lead_id})
        raise MethodNotAllowed("use GET /leads/{id}, GET /leads/{id}/history or DELETE "
                               "/leads/{id}")
    raise NotFound("use /leads, /leads/{email-or-id}, /leads/{id}/history or /non-openers")
