"""`crm_webhook`: what sales says. The CRM's deal changes (HubSpot, see the provider
registry) and a rep's accept / reject on a Slack card (`/slack-action`, signed links)
become sales outcomes on the lead."""

from __future__ import annotations

from urllib.parse import parse_qs

from flask import Request, Response

from leadscore import pages
from leadscore.container import Container, container
from leadscore.http import endpoint, read_body
from leadscore.providers.signing import secrets
from leadscore.webhook import serve_provider, write_events

ACTION_PATH = "/slack-action"

IGNORED = "no deal change we record"


def _sales_action(request: Request, app: Container) -> Response:
    """GET: a page asking for the reason; POST: record the outcome (once per change)."""
    from leadscore.service import sales_actions  # only this path needs it (cold start)

    now = app.now()
    query = dict(request.args.items())
    action = sales_actions.checked(
        query, secrets(app.settings.slack_action_secret.get_secret_value()), now)
    verb = "Accept" if action.outcome == "sales_accepted" else "Reject"
    if request.method == "GET":
        form = (f'<form method="post"><label for="reason">Reason (optional)</label><br>'
                f'<textarea id="reason" name="reason" rows="3" cols="40" maxlength="500">'
                f'</textarea><br><button type="submit">{verb} this lead</button></form>')
        page = pages.page(200, f"{verb} this lead?", "Sales will see your answer on the lead.")
        page.set_data(page.get_data(as_text=True).replace("</main>", form + "</main>"))
        return page
    fields = parse_qs(read_body(request, 4096).decode("utf-8", "replace"))
    reason = (fields.get("reason") or [""])[0]
    sales_actions.record(app.store, app.rules, action, reason, now)
    return pages.page(200, "Recorded", f"{verb}ed. Thank you.")


@endpoint("crm_webhook", methods={"POST", "GET"}, pages_for_browsers=True)
def crm_webhook(request: Request) -> Response:
    app = container()
    if request.path.rstrip("/") == ACTION_PATH:
        return _sales_action(request, app)
    return serve_provider(request, app, "crm_webhook", limit=app.settings.purchase_max_bytes,
                          noun="CRM",
                          apply=lambda app, result, now: write_events(app, result, now,
                                                                      IGNORED))
