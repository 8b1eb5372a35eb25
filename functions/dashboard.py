"""`dashboard`: the marketers' pages (issue 17), server-rendered HTML.

In production the function is private (Cloud Run IAM grants the invoker group); the token
sign-in at `/dashboard/login` is the local default and the fallback. Routes are matched
with or without the `/dashboard` prefix (Cloud Run serves the function at `/`)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Request, Response
from werkzeug.exceptions import MethodNotAllowed as NoSuchMethod
from werkzeug.exceptions import NotFound as NoSuchRoute
from werkzeug.routing import Map, Rule

from leadscore.container import Container, container
from leadscore.dashboard import access, pages, queries, snapshot
from leadscore.domain.identity import is_lead_id
from leadscore.domain.state import STAGES
from leadscore.http import endpoint
from leadscore.logs import warning

PREFIX = "/dashboard"
LIST_LIMIT = 200
ROUTES = Map([
    Rule("/", endpoint="overview", methods=["GET"]),
    Rule("/login", endpoint="login", methods=["GET", "POST"]),
    Rule("/logout", endpoint="logout", methods=["POST"]),
    Rule("/leads", endpoint="leads", methods=["GET"]),
    Rule("/leads/<lead_id>", endpoint="lead", methods=["GET"]),
], strict_slashes=False)
HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                      "img-src 'self'; form-action 'self'; frame-ancestors 'none'",
           "Referrer-Policy": "no-referrer"}


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html", headers=HEADERS)


def _redirect(to: str) -> Response:
    return Response("", status=303, headers={**HEADERS, "Location": to})


def _nonce(request: Request) -> tuple[str, bool]:
    found = request.cookies.get(access.CSRF_COOKIE)
    return (found, False) if found else (access.new_nonce(), True)


def _with_nonce(response: Response, nonce: str, fresh: bool) -> Response:
    if fresh:
        response.set_cookie(access.CSRF_COOKIE, nonce, httponly=True, secure=True,
                            samesite="Strict", path=PREFIX)
    return response


def _login(request: Request, app: Container, tokens: list[str]) -> Response:
    nonce, fresh = _nonce(request)
    csrf = access.csrf_token(nonce, tokens)
    if request.method == "GET":
        return _with_nonce(_html(pages.login(csrf)), nonce, fresh)
    if not access.csrf_ok(request.cookies.get(access.CSRF_COOKIE), request.form.get("csrf"),
                          tokens):
        warning("dashboard form refused", function="dashboard", problem="csrf")
        return _with_nonce(_html(pages.login(csrf, "The form expired; please try again."),
                                 403), nonce, fresh)
    if not access.token_ok(request.form.get("token", ""), tokens):
        warning("dashboard sign-in refused", function="dashboard", problem="token")
        return _html(pages.login(csrf, "That token is not valid."), 401)
    response = _redirect(PREFIX)
    response.set_cookie(access.SESSION_COOKIE, access.new_session(tokens, app.now()),
                        max_age=int(access.SESSION_LIFETIME.total_seconds()), httponly=True,
                        secure=True, samesite="Strict", path=PREFIX)
    return response


def _logout(request: Request, app: Container, tokens: list[str]) -> Response:
    if not access.csrf_ok(request.cookies.get(access.CSRF_COOKIE), request.form.get("csrf"),
                          tokens):
        return _html(pages.layout("Refused", "<p>The form expired.</p>"), 403)
    response = _redirect(PREFIX + "/login")
    response.delete_cookie(access.SESSION_COOKIE, path=PREFIX, secure=True, httponly=True,
                           samesite="Strict")
    return response


def _overview(request: Request, app: Container, csrf: str) -> Response:
    view = queries.overview(app.store, app.rules, app.now())
    return _html(pages.overview(view, csrf))


def _leads(request: Request, app: Container, csrf: str) -> Response:
    grade = request.args.get("grade") or None
    stage = request.args.get("stage") or None
    non_opener = True if request.args.get("non_opener") else None
    if (stage is not None and stage not in STAGES) or (grade is not None
                                                       and grade not in snapshot.GRADES):
        return _html(pages.layout("Bad filter", "<p>Unknown stage or grade.</p>", csrf), 400)
    leads = app.store.list_leads(stage=stage, grade=grade,
                                 non_opener=non_opener, limit=LIST_LIMIT)
    title = "Leads" + "".join(f", {k} {v}" for k, v in (("grade", grade), ("stage", stage))
                              if v) + (", non-openers" if non_opener else "")
    return _html(pages.lead_list(leads, title, csrf))


def _lead(request: Request, app: Container, csrf: str, lead_id: str) -> Response:
    # only our ids are read: other text names no lead, and some is no Firestore document id
    # ("__x__", "..", 2,000 characters: an InvalidArgument there, which was a 500)
    lead = app.store.get_lead(lead_id) if is_lead_id(lead_id) else None
    if lead is None:
        return _html(pages.layout("Not found", "<p>No lead with that id.</p>", csrf), 404)
    return _html(pages.lead_page(lead, app.store.history(lead_id, limit=200), csrf))


PAGES: dict[str, Callable[..., Response]] = {
    "overview": _overview, "leads": _leads, "lead": _lead}


@endpoint("dashboard", methods={"GET", "POST"})
def dashboard(request: Request) -> Response:
    app = container()
    tokens = app.settings.dashboard_token_list()
    path = request.path.removeprefix(PREFIX) or "/"
    try:
        name, arguments = ROUTES.bind("localhost").match(path, method=request.method)
    except NoSuchMethod:
        return _html(pages.layout("Not allowed", "<p>Method not allowed.</p>"), 405)
    except NoSuchRoute:
        return _html(pages.layout("Not found", "<p>No such page.</p>"), 404)
    if name == "login":
        return _login(request, app, tokens)
    if name == "logout":
        return _logout(request, app, tokens)
    if not access.session_ok(request.cookies.get(access.SESSION_COOKIE), tokens, app.now()):
        return _redirect(PREFIX + "/login")
    nonce, fresh = _nonce(request)
    response = PAGES[str(name)](request, app, access.csrf_token(nonce, tokens), **arguments)
    return _with_nonce(response, nonce, fresh)
