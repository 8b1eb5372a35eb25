"""The dashboard through the functions-framework's test client, on every durable store:
sign-in required, sign in and out, CSRF refusal, a bad token, and the page's numbers equal
to the store's counts and to `leadscore report`'s."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import NOW
from dashboard_seed import seed_leads
from functional.conftest import client_for

from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.dashboard import access
from leadscore.domain.rules import default_rules
from leadscore.service.reports import build_report
from leadscore.store.port import LeadCount

TOKENS = "dash-current-7f3a,dash-previous-1b2c"


@pytest.fixture
def dash(durable_store: Any) -> Iterator[Any]:
    built = Container(Settings(dashboard_tokens=TOKENS), store=durable_store,
                      clock=lambda: NOW)
    install(built)
    yield client_for("dashboard"), built
    install(None)


def _csrf(html: str) -> str:
    found = re.search(r"name='csrf' value='([^']+)'", html)
    assert found, html
    return found.group(1)


def _sign_in(client: Any, token: str = "dash-previous-1b2c") -> Any:
    page = client.get("/dashboard/login")
    return client.post("/dashboard/login", data={"token": token,
                                                 "csrf": _csrf(page.get_data(as_text=True))})


def _counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"data-count='([^']+)'>(\d+)<", html)}


def test_every_page_needs_a_session(dash: Any) -> None:
    client, _ = dash
    for path in ("/dashboard", "/dashboard/leads?grade=B2", "/dashboard/leads/abc"):
        # WHEN a page is asked for without signing in THEN it redirects to the sign-in form
        answer = client.get(path)
        assert answer.status_code == 303
        assert answer.headers["Location"].endswith("/dashboard/login")
    forged = client.get("/dashboard", headers={"Cookie": f"{access.SESSION_COOKIE}=9999999999.x"})
    assert forged.status_code == 303


def test_sign_in_sets_a_strict_cookie_and_sign_out_ends_it(dash: Any) -> None:
    client, _ = dash
    answer = _sign_in(client)
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=Strict"):
        assert flag in cookie
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "Score distribution" in page.get_data(as_text=True)
    out = client.post("/dashboard/logout", data={"csrf": _csrf(page.get_data(as_text=True))})
    assert out.status_code == 303
    assert client.get("/dashboard").status_code == 303


def test_a_bad_token_is_a_401_page_and_a_missing_csrf_is_refused(dash: Any) -> None:
    client, _ = dash
    bad = _sign_in(client, token="guess")
    assert bad.status_code == 401
    assert "not valid" in bad.get_data(as_text=True)
    client.get("/dashboard/login")
    no_csrf = client.post("/dashboard/login", data={"token": "dash-current-7f3a"})
    assert no_csrf.status_code == 403
    assert client.get("/dashboard").status_code == 303
    # a signed-in session cannot be signed out by a forged form either
    _sign_in(client)
    assert client.post("/dashboard/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/dashboard").status_code == 200


def test_rotating_the_tokens_ends_sessions() -> None:
    cookie = access.new_session(["a", "b"], NOW)
    assert access.session_ok(cookie, ["b", "a"], NOW)
    assert not access.session_ok(cookie, ["b"], NOW)
    assert not access.session_ok(cookie, ["a", "b"], NOW + access.SESSION_LIFETIME)


@pytest.mark.parametrize("cookie", ["\u00b2.abc", "9" * 4301 + ".abc", "9999999999.\u00e9",
                                    "-1.abc", " 9999999999.abc"])
def test_a_forged_session_cookie_is_no_session(cookie: str) -> None:
    # GIVEN a cookie a stranger made (found by a review: each of these was a 500)
    # WHEN it is checked THEN it is refused, as any cookie that is not ours
    assert not access.session_ok(cookie, ["a"], NOW)


def test_a_csrf_value_outside_ascii_is_refused() -> None:
    assert not access.csrf_ok("nonce", "\u00e9", ["a"])
    assert access.csrf_ok("nonce", access.csrf_token("nonce", ["a"]), ["a"])


def test_the_page_numbers_equal_the_store_and_the_report(dash: Any) -> None:
    client, app = dash
    seed_leads(app.store, default_rules(), 120, NOW)
    _sign_in(client)
    html = client.get("/dashboard").get_data(as_text=True)
    counts = _counts(html)
    report = build_report(app.store, default_rules(), NOW)  # what `leadscore report --json` prints
    assert counts["total"] == report.leads == 120
    for stage, n in report.funnel.items():
        assert counts[f"stage:{stage}"] == n
    for letter, row in report.grades.items():
        for digit, n in row.items():
            assert counts[f"grade:{letter}{digit}"] == n
    for status in ("active", "unsubscribed", "bounced", "complained"):
        assert counts[f"email:{status}"] == app.store.count_matching(
            LeadCount(email_status=status))
    assert counts["email:unsubscribed"] > 0
    assert sum(counts[f"email:{s}"] for s in ("active", "unsubscribed", "bounced",
                                              "complained")) == 120
    assert "person0" not in html.split("<main>")[0]  # no address in the head or URLs
    assert not re.search(r"href='[^']*@", html)


def test_handovers_given_up_are_shown_apart_from_sent(dash: Any) -> None:
    from datetime import timedelta

    from leadscore.domain.outbox import StageChange
    from leadscore.domain.state import LeadState
    from leadscore.store.port import LeadWrite

    client, app = dash
    seed = LeadState.model_validate({"lead_id": "l_0", "email": "p0@example.com",
                                     "score": 50, "stage": "mql", "grade": "B2"})
    # GIVEN three closed hand-overs of one lead: two sent, one given up after its retries
    changes = [StageChange(id=f"h{i}", lead_id="l_0", email="p0@example.com",
                           stage_before="lead", stage_after="mql", score=50, grade="B2",
                           at=NOW, attempts=1 + 9 * (i == 2), next_attempt_at=NOW,
                           delivered=False) for i in range(3)]
    app.store.transact("l_0", [], lambda snap: (LeadWrite(lead=seed, outbox=changes), None))
    for i, change in enumerate(changes):
        app.store.record_handover(change.model_copy(update={
            "delivered": True, "given_up": i == 2, "closed_at": NOW,
            "expires_at": NOW + timedelta(days=30)}))
    # WHEN the overview is shown
    _sign_in(client)
    counts = _counts(client.get("/dashboard").get_data(as_text=True))
    # THEN "sent" counts only what was sent, and the given-up change has its own line
    assert (counts["handovers:sent"], counts["handovers:given up"]) == (2, 1)


def test_a_grade_cell_leads_to_its_leads_and_a_lead_to_its_page(dash: Any) -> None:
    client, app = dash
    seed_leads(app.store, default_rules(), 60, NOW)
    _sign_in(client)
    html = client.get("/dashboard").get_data(as_text=True)
    grade = max((k for k in _counts(html) if k.startswith("grade:")),
                key=lambda k: _counts(html)[k]).split(":")[1]
    listing = client.get(f"/dashboard/leads?grade={grade}").get_data(as_text=True)
    ids = re.findall(r"href='/dashboard/leads/([0-9a-zA-Z_-]+)'", listing)
    assert len(ids) == app.store.count_matching(LeadCount(grade=grade)) > 0
    lead = app.store.get_lead(ids[0])
    assert lead is not None and lead.grade == grade
    page = client.get(f"/dashboard/leads/{ids[0]}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Score breakdown" in text and "<svg" in text and lead.stage in text
    assert client.get("/dashboard/leads?stage=nonsense").status_code == 400


def test_a_snapshot_is_taken_once_a_day_on_page_view(dash: Any) -> None:
    client, app = dash
    seed_leads(app.store, default_rules(), 20, NOW)
    _sign_in(client)
    client.get("/dashboard")
    days = app.store.snapshots()
    assert list(days) == [NOW.date().isoformat()]
    assert sum(v for k, v in days[NOW.date().isoformat()].items()
               if k.startswith("stage:")) == 20


def test_hot_leads_movers_and_machine_opens_come_from_their_queries(dash: Any) -> None:
    client, app = dash
    seed_leads(app.store, default_rules(), 150, NOW)
    _sign_in(client)
    html = client.get("/dashboard").get_data(as_text=True)
    # hot leads: the newest to reach SQL or MQL, newest first
    hot = re.findall(r"data-hot='([^']+)'", html)
    newest = sorted(app.store.newest_in_stage("sql", 50) + app.store.newest_in_stage("mql", 50),
                    key=lambda x: (x.stage_since, x.lead_id), reverse=True)
    assert hot and hot == [x.lead_id for x in newest[:len(hot)]]
    # top movers: every lead of the seed is new this week, so it moved by its whole score
    up = re.findall(r"data-mover-up='([^']+)'", html)
    assert up == [x.lead_id for x in app.store.top_movers(True, len(up))] and up
    best = app.store.get_lead(up[0])
    assert best is not None and best.movement == best.score
    # machine-open share: summed open counters, equal to the leads' own counters
    counts = _counts(html)
    machine = sum(x.counters.get("email_opened_machine", 0)
                  for x in _every_lead(app.store))
    human = sum(x.counters.get("email_opened", 0) for x in _every_lead(app.store))
    assert counts["opens:machine"] == machine > 0 and counts["opens:all"] == machine + human
    assert f"{machine / (machine + human):.1%}" in html


def _every_lead(store: Any) -> list[Any]:
    leads, after = [], None
    while page := store.iter_leads(after_id=after, limit=100):
        leads += page
        after = page[-1].lead_id
    return leads


RAW_SURROGATE = "\xed\xa0\x80"  # a server's PATH_INFO for the bytes of "\ud800" (latin-1)


@pytest.mark.parametrize("lead_id", ["__x__", ".", "..", "a/b", "l_" + "a" * 2000,
                                     "a" * 2000, "%ED%A0%80", RAW_SURROGATE, "l___x__"])
def test_a_lead_page_for_text_that_is_no_lead_id_is_a_404_without_a_store_read(
        dash: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        lead_id: str) -> None:
    # GIVEN a signed-in user (Firestore refuses "__x__", "..", ids over 1,500 bytes: a 500)
    client, app = dash
    _sign_in(client)
    reads: list[str] = []
    real = app.store.get_lead
    monkeypatch.setattr(app.store, "get_lead", lambda i: (reads.append(i), real(i))[1])
    # WHEN a lead page is asked for under text that is not a lead id
    path = f"/dashboard/leads/{lead_id}"
    answer = client.get(path, environ_overrides={"PATH_INFO": path}
                        if lead_id == RAW_SURROGATE else None)
    # THEN it is the page an unknown lead gets, without a read or a logged failure
    assert answer.status_code == 404, answer.get_data(as_text=True)[:300]
    assert answer.mimetype == "text/html"
    assert reads == []
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
