"""A real browser: headless Chromium loads a shop page with leadscore.js from a local
leadscore server (another origin, as in production), and we watch what reaches the server.

No tracking before consent, none with Do Not Track or Global Privacy Control; after consent
page views, single-page-app navigation, then a form submission: the lead appears with the
earlier page views in its history at their own times and the score the rules give."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from leadscore.container import Container, install
from leadscore.domain.identity import lead_id_for
from leadscore.store.sqlite import SqliteStore

from .cdp import CHROMIUM, Browser
from .conftest import CLIENT_KEY, track_settings

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists(),
                                reason="chromium is not installed (make test installs it)")

EMAIL = "priya.raman@tailspin-toys.com"
PAGE = """<!doctype html><html><head><title>Tailspin shop</title>
<script src="{api}/track/leadscore.js" data-key="{key}"></script></head>
<body><h1>Tailspin</h1>
<form id="demo" method="post" action="{api}/form_submission?form=demo_request">
<input name="email" type="email"><button>Book a demo</button></form></body></html>"""


class Recorder:
    """Wraps the leadscore app: remembers every tracking call that reached it."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, list[str]()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST":
            self.calls.append(environ["PATH_INFO"])
        return self.app(environ, start_response)


def _serve(app: Any) -> tuple[Any, str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from werkzeug.wrappers import Request, Response

    from leadscore.server import build_app

    holder: dict[str, str] = {}

    def shop(environ: dict[str, Any], start_response: Any) -> Any:
        Request(environ)  # any path is the single-page app
        html = PAGE.format(api=holder["api"], key=CLIENT_KEY)
        return Response(html, mimetype="text/html")(environ, start_response)

    shop_server, shop_base = _serve(shop)
    store = SqliteStore(tmp_path / "leads.db")
    install(Container(track_settings(track_allowed_origins=shop_base), store=store))
    recorder = Recorder(build_app())
    api_server, holder["api"] = _serve(recorder)
    browser = Browser()
    try:
        yield {"shop": shop_base, "store": store, "calls": recorder.calls, "browser": browser}
    finally:
        browser.close()
        api_server.shutdown()
        shop_server.shutdown()
        install(None)
        store.close()


def tracking_calls(site: dict[str, Any]) -> list[str]:
    return [c for c in site["calls"] if c.startswith("/track/")]


@pytest.mark.parametrize("signal", ["Object.defineProperty(navigator, 'doNotTrack', "
                                    "{get: () => '1'})",
                                    "Object.defineProperty(navigator, 'globalPrivacyControl', "
                                    "{get: () => true})"], ids=["dnt", "gpc"])
def test_do_not_track_and_gpc_mean_no_tracking_even_with_consent(site: dict[str, Any],
                                                                  signal: str) -> None:
    browser = site["browser"]
    tab = browser.open(site["shop"] + "/", before_load=signal)
    assert browser.eval(tab, "leadscore.consent(true)") is True
    browser.eval(tab, "leadscore.track('Demo Requested', {})")
    browser.eval(tab, "history.pushState({}, '', '/pricing')")
    assert browser.eval(tab, "leadscore.anonymousId()") is None
    time.sleep(0.5)
    assert tracking_calls(site) == []
    assert "ls_aid" not in browser.eval(tab, "document.cookie")


def test_consent_then_spa_navigation_then_a_form_makes_the_lead(site: dict[str, Any]) -> None:
    browser, store = site["browser"], site["store"]
    # GIVEN a visitor on the shop who has not consented
    tab = browser.open(site["shop"] + "/")
    browser.eval(tab, "history.pushState({}, '', '/pricing')")
    time.sleep(0.5)
    # THEN nothing was sent and no cookie was set
    assert tracking_calls(site) == [] and browser.eval(tab, "document.cookie") == ""
    # WHEN they accept the consent banner, then browse the single-page app
    browser.eval(tab, "leadscore.consent(true)")  # a view of /pricing, where they are
    browser.wait_for(tab, "document.cookie.includes('ls_aid=')")
    started = datetime.now(UTC)
    for step in ["history.pushState({}, '', '/product/rockets')",
                 "history.pushState({}, '', '/')", "history.back()"]:
        time.sleep(0.3)
        browser.eval(tab, step)
    deadline = time.monotonic() + 10
    while len(tracking_calls(site)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tracking_calls(site) == ["/track/v1/p"] * 4
    assert store.get_lead(lead_id_for(EMAIL)) is None  # still anonymous
    # WHEN they book a demo with the form
    time.sleep(0.3)
    browser.eval(tab, f"document.querySelector('input[name=email]').value = '{EMAIL}'; "
                      "document.getElementById('demo').requestSubmit()")
    deadline = time.monotonic() + 10
    while store.get_lead(lead_id_for(EMAIL)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    # THEN the lead has the four page views, at their own times before the form
    time.sleep(0.3)
    history = store.history(lead_id_for(EMAIL))
    kinds = [e.event.get("activity") or e.event.get("form_kind") for e in history]
    assert kinds == ["pricing_page_visit", "product_page_visit", "website_visit",
                     "product_page_visit", "demo_request"]
    views, form = history[:-1], history[-1]
    assert all(a.at < b.at for a, b in itertools.pairwise(history))
    assert views[1].at >= started and form.at - views[0].at > (views[1].at - views[0].at)
    # AND the score the rules give: pricing 10 + product 3 x 2 + visit 1 + demo request 45
    lead = store.get_lead(lead_id_for(EMAIL))
    assert lead.score == pytest.approx(62, abs=0.05)
    assert lead.stage == "mql"
