"""The deployment bundle runs on its own: its requirements.txt alone in a fresh virtual
environment, each entry point under the real functions-framework, on the emulator."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import PROJECT
from emulator import free_port

from infra import bundle

TOKEN = "bundle-test-token"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle.build(tmp_path_factory.mktemp("deploy") / "bundle")


def test_the_bundle_holds_only_what_runs(built: Path) -> None:
    names = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    assert "main.py" in names and "requirements.txt" in names
    assert "leadscore/domain/default_rules.yaml" in names
    assert not any(n.startswith(("tests/", "bench/", "infra/", ".")) or n.endswith(
        (".db", ".sqlite", ".pyc", ".pem", ".key", ".env")) for n in names)
    pins = (built / "requirements.txt").read_text().split()
    assert pins and all("==" in line for line in pins)
    assert any(line.startswith("functions-framework==") for line in pins)


@pytest.fixture(scope="module")
def venv(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    pip = subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check", "-r", str(built / "requirements.txt")],
                         capture_output=True, text=True, timeout=600, check=False)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return home


@pytest.fixture
def serve(venv: Path, built: Path, firestore_emulator: str) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []
    collection = f"bundle_{uuid.uuid4().hex[:8]}"

    def start(target: str, signature: str) -> str:
        port = free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")},
               "LEADSCORE_STORE": "firestore", "LEADSCORE_FIRESTORE_COLLECTION": collection,
               "GOOGLE_CLOUD_PROJECT": PROJECT, "FIRESTORE_EMULATOR_HOST": firestore_emulator,
               "LEADSCORE_API_TOKEN": TOKEN, "PYTHONPATH": ""}
        process = subprocess.Popen(
            [str(venv / "bin" / "functions-framework"), f"--target={target}",
             f"--signature-type={signature}", f"--port={port}", "--host=127.0.0.1"],
            cwd=built, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                requests.get(base, timeout=1)
                return base
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"{target} did not start")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def test_http_and_pubsub_entry_points_run_from_the_bundle(serve: Any) -> None:
    # GIVEN the ingest and decay functions started from the bundle as Cloud Run would
    ingest = serve("ingest", "http")
    decay = serve("inactivity_decay", "cloudevent")
    # WHEN an event is ingested over HTTP
    answer = requests.post(ingest, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"},
                           json={"type": "activity", "email": "bundle@example.com",
                                 "source": "test", "idempotency_key": "b1",
                                 "occurred_at": "2026-11-01T10:00:00Z",
                                 "activity": "webinar_attended"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == 1
    # AND the scheduler's Pub/Sub message arrives as a CloudEvent
    message = {"message": {"data": base64.b64encode(b"{}").decode(), "messageId": "1"},
               "subscription": f"projects/{PROJECT}/subscriptions/decay"}
    tick = requests.post(decay, timeout=60, data=json.dumps(message), headers={
        "Content-Type": "application/json", "ce-id": "1", "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/decay",
        "ce-time": "2026-12-20T05:00:00Z"})
    # THEN both answer from the bundle alone, on the Firestore emulator
    assert tick.status_code == 200, tick.text
