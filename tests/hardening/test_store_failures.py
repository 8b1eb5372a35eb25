"""A store that cannot be used (issue 21): a clear 503 with Retry-After, a failing
`/healthz`, and one line from the CLI, never a generic 500 or a traceback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from functional.conftest import client_for
from werkzeug.test import Client

from leadscore.config import Settings
from leadscore.container import Container, install
from leadscore.server import build_app

BIN = Path(sys.executable).parent / "leadscore"


@pytest.fixture(params=["corrupt", "read-only"])
def broken_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "leads.db"
    if request.param == "corrupt":
        path.write_bytes(b"this is not a database" * 100)
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes read-only files anyway")
        from leadscore.store.sqlite import SqliteStore

        SqliteStore(path).close()
        path.chmod(stat.S_IRUSR)
        tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    url = f"sqlite:///{path}"
    install(Container(Settings(store=url, api_token="t")))
    yield url
    install(None)
    tmp_path.chmod(stat.S_IRWXU)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_broken_store_answers_503_and_healthz_fails(broken_store: str) -> None:
    # WHEN a form is posted and the health check is asked
    answer = client_for("form_submission").post(
        "/", json={"email": "h@example.com", "form": "contact"})
    health = Client(build_app()).get("/healthz")
    # THEN both say the store is unavailable, clearly
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert answer.get_json()["error"] == "store_unavailable"
    assert health.status_code == 503 and health.get_json()["status"] == "unavailable"


def test_the_cli_reports_a_corrupt_store_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "leads.db"
    path.write_bytes(b"this is not a database" * 100)
    done = subprocess.run([str(BIN), "--store", f"sqlite:///{path}", "lead", "show",
                           "x@example.com"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "store unavailable" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_cli_reports_an_invalid_setting_in_one_line(tmp_path: Path) -> None:
    # GIVEN a setting that is not a number
    env = {**os.environ, "LEADSCORE_HOME": str(tmp_path), "LEADSCORE_INGEST_MAX_BYTES": "abc"}
    # WHEN any command runs
    done = subprocess.run([str(BIN), "report"], capture_output=True, text=True, timeout=60,
                          check=False, env=env)
    # THEN it ends in one line naming the setting, not a traceback
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "invalid settings" in done.stderr
    assert "ingest_max_bytes" in done.stderr.lower()
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
