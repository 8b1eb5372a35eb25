"""A real browser: headless Chromium signs in to the dashboard served by a real local server
on a SQLite store seeded with a few thousand leads, reads the numbers on the page against
the store's counts and `leadscore report`'s, follows a grade cell to its leads and a lead to
its page, signs out, and is refused without a session. Screenshots at 1280x800 and 390x844
go to the test's tmp dir (and to docs/dashboard.png with LEADSCORE_RENDER_DOCS=1)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW
from dashboard_seed import seed_leads
from tracking.cdp import CHROMIUM, Browser

from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.domain.rules import default_rules
from leadscore.service.reports import build_report
from leadscore.store.port import LeadCount
from leadscore.store.sqlite import SqliteStore

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists(),
                                reason="chromium is not installed (make test installs it)")
TOKEN = "browser-dash-token-5e1"
LEADS = 2000
DOCS = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from werkzeug.serving import make_server

    from leadscore.server import build_app

    store = SqliteStore(tmp_path / "leads.db")
    seed_leads(store, default_rules(), LEADS, NOW)
    install(Container(Settings(dashboard_tokens=TOKEN), store=store, clock=lambda: NOW))
    server = make_server("127.0.0.1", 0, build_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = Browser(timeout=60)
    try:
        yield {"base": f"http://localhost:{server.server_port}", "store": store,
               "browser": browser}
    finally:
        browser.close()
        server.shutdown()
        install(None)
        store.close()


def _tab(browser: Browser) -> str:
    """A fresh tab in its own browser context (no cookies), on about:blank."""
    context = browser.call("Target.createBrowserContext")["browserContextId"]
    target = browser.call("Target.createTarget", url="about:blank",
                          browserContextId=context)["targetId"]
    session: str = browser.call("Target.attachToTarget", targetId=target,
                                flatten=True)["sessionId"]
    browser.call("Page.enable", session)
    return session


def _go(browser: Browser, tab: str, url: str) -> str:
    browser.call("Page.navigate", tab, url=url)
    return _settled(browser, tab)


def _settled(browser: Browser, tab: str) -> str:
    time.sleep(0.2)
    browser.wait_for(tab, "document.readyState === 'complete'", timeout=60)
    path: str = browser.eval(tab, "location.pathname + location.search")
    return path


def _click(browser: Browser, tab: str, selector: str) -> str:
    browser.eval(tab, f"document.querySelector({selector!r}).click()")
    return _settled(browser, tab)


def _counts(browser: Browser, tab: str) -> dict[str, int]:
    found: dict[str, str] = browser.eval(tab, "Object.fromEntries([...document.querySelectorAll("
                                              "'[data-count]')].map(e => [e.dataset.count, "
                                              "e.textContent]))")
    return {k: int(v) for k, v in found.items()}


def _report_json() -> Any:
    from click.testing import CliRunner

    from leadscore.cli import main

    result = CliRunner().invoke(main, ["report", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _screenshot(browser: Browser, tab: str, width: int, height: int, to: Path,
                whole_page: bool = False) -> None:
    browser.call("Emulation.setDeviceMetricsOverride", tab, width=width, height=height,
                 deviceScaleFactor=1, mobile=width < 600)
    time.sleep(0.3)
    extra: dict[str, Any] = {}
    if whole_page:  # the README's picture: every section, not only the first screen
        tall = browser.eval(tab, "document.documentElement.scrollHeight")
        extra = {"captureBeyondViewport": True,
                 "clip": {"x": 0, "y": 0, "width": width, "height": tall, "scale": 1}}
    data = browser.call("Page.captureScreenshot", tab, format="png", **extra)["data"]
    to.write_bytes(base64.b64decode(data))


def test_a_marketer_signs_in_reads_the_numbers_and_follows_links(
        served: dict[str, Any], tmp_path: Path) -> None:
    browser, store, base = served["browser"], served["store"], served["base"]
    tab = _tab(browser)
    # WHEN the page is opened without a session THEN the sign-in form is shown instead
    assert _go(browser, tab, base + "/dashboard") == "/dashboard/login"
    # WHEN a wrong token is typed THEN the form says so and no page opens
    browser.eval(tab, "document.getElementById('token').value = 'nope'")
    _click(browser, tab, "button[type=submit]")
    assert "not valid" in browser.eval(tab, "document.body.innerText")
    assert _go(browser, tab, base + "/dashboard") == "/dashboard/login"
    # WHEN the right token is typed THEN the dashboard opens
    browser.eval(tab, f"document.getElementById('token').value = {TOKEN!r}")
    assert _click(browser, tab, "button[type=submit]") == "/dashboard"
    counts = _counts(browser, tab)
    report = _report_json()  # the command itself, on the same store at the same moment
    assert report == build_report(store, default_rules(), NOW).model_dump(mode="json")
    assert counts["total"] == report["leads"] == LEADS
    for stage, n in report["funnel"].items():
        assert counts[f"stage:{stage}"] == n
    for letter, row in report["grades"].items():
        for digit, n in row.items():
            assert counts[f"grade:{letter}{digit}"] == n
    assert counts["non_openers"] == store.count_matching(LeadCount(non_opener=True))
    for status in ("unsubscribed", "bounced", "complained"):
        assert counts[f"email:{status}"] == store.count_matching(LeadCount(email_status=status))
    # the newest SQLs/MQLs, the week's movers and the machine-open share are on the page
    text = browser.eval(tab, "document.body.innerText")
    assert "Top movers, last 7 days" in text and "machine-open share" in text
    hot = browser.eval(tab, "[...document.querySelectorAll('[data-hot]')].map(e => e.dataset.hot)")
    assert hot and hot[0] in {x.lead_id for x in store.newest_in_stage("sql", 1)
                              + store.newest_in_stage("mql", 1)}
    assert counts["opens:machine"] == store.sum_counter("email_opened_machine") > 0
    shots = tmp_path / "screenshots"
    shots.mkdir()
    _screenshot(browser, tab, 1280, 800, shots / "dashboard-1280x800.png")
    _screenshot(browser, tab, 390, 844, shots / "dashboard-390x844.png")
    assert all(p.stat().st_size > 10_000 for p in shots.iterdir())
    if os.environ.get("LEADSCORE_RENDER_DOCS") == "1":
        _screenshot(browser, tab, 1280, 800, DOCS, whole_page=True)
    # every chart is labelled, and keyboard focus reaches the grade cells
    assert browser.eval(tab, "[...document.querySelectorAll('svg')].every("
                             "s => s.getAttribute('aria-label') && s.querySelector('title'))")
    # WHEN the fullest grade cell is followed THEN its leads are listed
    grade = max((k for k in counts if k.startswith("grade:")), key=counts.__getitem__)[6:]
    assert _click(browser, tab, f"a[href='/dashboard/leads?grade={grade}']") == (
        f"/dashboard/leads?grade={grade}")
    rows = browser.eval(tab, "document.querySelectorAll('tbody tr').length")
    assert rows == min(200, store.count_matching(LeadCount(grade=grade)))
    # WHEN a lead is followed THEN its page shows its breakdown and history chart
    path = _click(browser, tab, "tbody a")
    lead = store.get_lead(path.rsplit("/", 1)[1])
    assert lead is not None and lead.grade == grade
    text = browser.eval(tab, "document.body.innerText")
    assert "Score breakdown" in text and f"{lead.score:.2f}" in text
    # WHEN they sign out THEN the pages are refused again
    assert _click(browser, tab, "header button[type=submit]") == "/dashboard/login"
    assert _go(browser, tab, base + "/dashboard") == "/dashboard/login"
