"""Log lines as Cloud Logging reads them (found by a session-9 audit):

- each line of a request carries `logging.googleapis.com/trace` and `.../spanId`, read from
  the request's `traceparent` or `X-Cloud-Trace-Context` only when they have their documented
  shape, and the functions-framework's execution id as a label;
- with LOG_EXECUTION_ID (Firebase sets it) each of our lines is written once, not again by
  the framework's root handler;
- `inactivity_decay` answers a store failure with one JSON line and a 5xx (Pub/Sub retries),
  not Flask's plain-text traceback;
- `leadscore serve` writes its access and error lines as JSON, with the path only.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from conftest import PROJECT
from emulator import free_port, wait_until_serving

from functional.conftest import MAIN, client_for
from leadscore import logs
from leadscore.config import Settings
from leadscore.container import Container, install

TRACE_ID = "105445aa7843bc8bf206b12000100000"
W3C_TRACE, W3C_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
NAME, SURNAME = "ZzqAlice", "ZzqSmith"


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- 4. trace correlation -------------------------------------------------------------------
@pytest.mark.parametrize(("headers", "trace", "span", "sampled"), [
    ({"x-cloud-trace-context": f"{TRACE_ID}/123;o=1"}, TRACE_ID, "000000000000007b", True),
    ({"x-cloud-trace-context": f"{TRACE_ID.upper()}/1"}, TRACE_ID, "0000000000000001", False),
    ({"x-cloud-trace-context": TRACE_ID}, TRACE_ID, None, False),
    ({"traceparent": f"00-{W3C_TRACE}-{W3C_SPAN}-01"}, W3C_TRACE, W3C_SPAN, True),
    ({"traceparent": f"00-{W3C_TRACE}-{W3C_SPAN}-00",  # the W3C header wins
      "x-cloud-trace-context": f"{TRACE_ID}/123;o=1"}, W3C_TRACE, W3C_SPAN, False),
])
def test_a_well_formed_trace_header_names_the_trace_and_span(
        monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], trace: str,
        span: str | None, sampled: bool) -> None:
    # GIVEN the project the function runs in
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-project")
    # WHEN a request's trace headers are read
    fields = logs.request_fields(headers)
    # THEN its lines will name the trace in the project, its span in hex, and sampling
    assert fields[logs.TRACE] == f"projects/demo-project/traces/{trace}"
    assert fields.get(logs.SPAN) == span and fields[logs.SAMPLED] is sampled


@pytest.mark.parametrize("headers", [
    {"x-cloud-trace-context": f"{NAME}/123;o=1"},
    {"x-cloud-trace-context": f"zzq.alice@example.com/{TRACE_ID}"},
    {"x-cloud-trace-context": TRACE_ID + "0" * 5000},
    {"x-cloud-trace-context": f"{'0' * 32}/1;o=1"},
    {"x-cloud-trace-context": f"{TRACE_ID}/{NAME};o=1"},
    {"traceparent": f"00-{W3C_TRACE[:-4]}{NAME[:4]}-{W3C_SPAN}-01"},
    {"traceparent": f"00-{'0' * 32}-{W3C_SPAN}-01"},
    {"traceparent": f"ff-{W3C_TRACE}-{W3C_SPAN}-01"},
    {"function-execution-id": f"{NAME} {SURNAME}"},
])
def test_a_header_of_another_shape_is_not_repeated(monkeypatch: pytest.MonkeyPatch,
                                                    headers: dict[str, str]) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-project")
    assert logs.request_fields(headers) == {}


def test_without_a_project_no_trace_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    assert logs.request_fields({"x-cloud-trace-context": f"{TRACE_ID}/1;o=1"}) == {}


def test_every_line_of_a_request_carries_its_trace_and_execution_id(
        app_container: Container, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a function in a project, and a request Cloud Run traced
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-project")
    client = client_for("form_submission")
    # WHEN it is refused (one line), then another request comes without trace headers
    client.post("/?form=contact", data="{bad", content_type="application/json",
                headers={"X-Cloud-Trace-Context": f"{TRACE_ID}/123;o=1",
                         "Function-Execution-Id": "exec-42"})
    traced = json_lines(capsys.readouterr().out)
    client.post("/?form=contact", data="{bad", content_type="application/json")
    untraced = json_lines(capsys.readouterr().out)
    # THEN the first request's line names its trace, span and execution id
    assert traced and all(
        x[logs.TRACE] == f"projects/demo-project/traces/{TRACE_ID}"
        and x[logs.SPAN] == "000000000000007b"
        and x[logs.LABELS] == {"execution_id": "exec-42"} for x in traced), traced
    # AND the next request's lines do not carry it
    assert untraced and all(logs.TRACE not in x for x in untraced)


# --- 5. LOG_EXECUTION_ID --------------------------------------------------------------------
@pytest.mark.parametrize("apps", [1, 2])
def test_with_log_execution_id_each_line_is_written_once(tmp_path: Path, apps: int) -> None:
    # GIVEN the framework's execution-id logging switched on, and one app, or two built in
    # one process (as `leadscore serve` builds one per function: the second app's logging
    # setup disabled our logger, and no line of ours was written at all)
    script = f"""
import functions_framework
for _ in range({apps}):
    app = functions_framework.create_app("form_submission", {str(MAIN)!r}, "http")
answer = app.test_client().post(
    "/?form=contact", data="{{bad", content_type="application/json",
    headers={{"Function-Execution-Id": "exec-42"}})
assert answer.status_code == 400, answer.status_code
"""
    env = {**os.environ, "LOG_EXECUTION_ID": "true", "LEADSCORE_HOME": str(tmp_path)}
    # WHEN a request is refused
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    # THEN its one line appears once, as our JSON, with the framework's execution id
    output = done.stdout + done.stderr
    assert output.count("request refused") == 1, output
    line = next(x for x in json_lines(done.stdout) if x["message"] == "request refused")
    assert line["logging.googleapis.com/labels"]["execution_id"] == "exec-42"
    assert line["function"] == "form_submission" and line["status"] == 400


# --- 6. the decay job's failures ------------------------------------------------------------
def _tick() -> tuple[dict[str, str], bytes]:
    event = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished",
                        "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/d"},
                       {"message": {"messageId": "1",
                                    "data": base64.b64encode(b"{}").decode()}})
    headers, body = to_binary(event)
    return dict(headers), body


def _decay_with(container: Container) -> Any:
    import functions_framework

    install(container)
    try:
        headers, body = _tick()
        return functions_framework.create_app("inactivity_decay", str(MAIN),
                                              "cloudevent").test_client().post(
            "/", headers=headers, data=body)
    finally:
        install(None)


@pytest.mark.parametrize("broken", ["corrupt", "unreachable"])
def test_a_decay_run_on_a_broken_store_is_one_json_line_and_a_5xx(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], broken: str) -> None:
    # GIVEN a corrupt embedded database, or a Firestore that does not answer
    if broken == "corrupt":
        (tmp_path / "leads.db").write_bytes(b"garbage" * 1000)
        settings = Settings(store=f"sqlite:///{tmp_path / 'leads.db'}")
    else:
        dead = f"127.0.0.1:{free_port()}"
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", dead)
        settings = Settings(store="firestore", firestore_emulator_host=dead,
                            google_cloud_project="demo-project")
    # WHEN the scheduler's tick arrives
    answer = _decay_with(Container(settings))
    # THEN Pub/Sub is told to retry (503), and the failure is one JSON ERROR line
    assert answer.status_code == 503, answer.get_data(as_text=True)
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out, out.err
    errors = [x for x in json_lines(out.out) if x["severity"] == "ERROR"]
    assert len(errors) == 1 and errors[0]["function"] == "inactivity_decay", errors
    if broken == "corrupt":  # the exception's type, none of its text
        assert errors[0]["problem"] == "DatabaseError"


# --- 7. the local server's own lines -----------------------------------------------------------
def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def test_the_local_server_writes_json_access_lines_with_the_path_only(tmp_path: Path) -> None:
    # GIVEN `leadscore serve` on gunicorn
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "LEADSCORE_API_TOKEN": "t" * 24}
    env.pop("LEADSCORE_STORE", None)
    env.pop("LEADSCORE_HOME", None)
    process = subprocess.Popen([str(Path(sys.executable).parent / "leadscore"), "serve",
                                "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}")
        # WHEN requests carry an address in the path, names in the query and the fragment
        # (a raw request line, as no browser sends a fragment), and a request line too long
        _raw(port, f"GET /form_submission/zzq.alice@example.com?n={NAME}#{SURNAME} "
                   "HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        _raw(port, f"GET /leads_api/leads/zzq.alice%40example.com#{NAME} HTTP/1.1\r\n"
                   "Host: x\r\nConnection: close\r\n\r\n".encode())
        too_long = _raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    # THEN the over-long line is still refused with a JSON 414
    assert too_long.startswith(b"HTTP/1.1 414") and b'"request_line_too_long"' in too_long
    # AND every line after the banner is JSON with a severity; access lines carry
    # httpRequest with the path only, addresses as lead ids, and no name anywhere
    logged = [x for x in output.splitlines() if x.startswith("{")]
    lines = [json.loads(x) for x in logged]
    assert all("severity" in x and "message" in x for x in lines)
    access = [x["httpRequest"] for x in lines if "httpRequest" in x
              and x["httpRequest"]["requestUrl"] != "/healthz"]  # (waiting for the server)
    assert {a["requestMethod"] for a in access} == {"GET"} and len(access) == 2, output
    assert all(set(a) >= {"requestUrl", "status", "latency"} for a in access)
    assert all("?" not in a["requestUrl"] and "#" not in a["requestUrl"] for a in access)
    assert [a["status"] for a in access] == [405, 401]
    assert any(x["severity"] == "WARNING" and "LimitRequestLine" in x["message"] for x in lines)
    for secret in (NAME, SURNAME, "zzq"):
        assert secret not in output, output
    after_banner = output.split("server: gunicorn", 1)[1].splitlines()[1:]
    assert not [x for x in after_banner if x and not x.startswith("{")], output
