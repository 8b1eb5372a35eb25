"""The deployment bundle runs on its own: its requirements.txt (the hashed lock) alone in a
fresh virtual environment on every Python we deploy on, each entry point under the real
functions-framework, on the emulator.

The environments are cached as .venv-bundle-3.X beside .venv and rebuilt only when the lock
changes, so this costs a few seconds after the first run."""

from __future__ import annotations

import ast
import base64
import glob
import json
import os
import shutil
import signal
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
from emulator import free_ports

from infra import bundle, config, plan

TOKEN = "bundle-test-token"
ROOT = Path(__file__).resolve().parents[2]
MINORS = ("3.11", "3.12", "3.13")


def _interpreter(minor: str) -> str | None:
    if f"{sys.version_info.major}.{sys.version_info.minor}" == minor:
        return sys.executable
    # pyenv's own copies first: its shims on PATH refuse versions that are not selected
    pyenv = sorted(glob.glob(f"{os.path.expanduser('~')}/.pyenv/versions/{minor}.*/bin/"
                             f"python{minor}"))
    found = pyenv[-1] if pyenv else shutil.which(f"python{minor}")
    return found


def _targets() -> list[str]:
    tree = ast.parse((ROOT / "functions" / "main.py").read_text())
    exported = next(n for n in tree.body if isinstance(n, ast.Assign)
                    and any(getattr(t, "id", "") == "__all__" for t in n.targets))
    return list(ast.literal_eval(exported.value))


def _event_entries() -> set[str]:
    chosen = config.DeployConfig(project="leadscore-demo-42", region="europe-west1")
    return {f.entry for f in plan.functions(chosen) if f.event_driven}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle.build(tmp_path_factory.mktemp("deploy") / "bundle")


def test_the_bundle_holds_only_what_runs(built: Path) -> None:
    names = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    assert "main.py" in names and "requirements.txt" in names
    assert "leadscore/domain/default_rules.yaml" in names
    assert not any(n.startswith(("tests/", "bench/", "infra/", ".")) or n.endswith(
        (".db", ".sqlite", ".pyc", ".pem", ".key", ".env")) for n in names)
    requirements = (built / "requirements.txt").read_text()
    pins = [line.split(";")[0].split()[0] for line in requirements.splitlines()
            if line and not line.startswith((" ", "#"))]
    assert pins and all("==" in pin for pin in pins)
    assert any(pin.startswith("functions-framework==") for pin in pins)
    # every pin carries its hashes, and nothing only a developer needs is in it
    assert requirements.count("--hash=sha256:") >= len(pins)
    assert not any(pin.startswith(("pytest==", "mypy==", "ruff==", "moto==", "hypothesis=="))
                   for pin in pins)


def test_the_lock_covers_every_runtime_dependency() -> None:
    # GIVEN pyproject.toml's runtime dependencies (a forgotten `make lock` shows here)
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = {line.split("==")[0] for line in bundle.LOCK.read_text().splitlines()
              if "==" in line and not line.startswith((" ", "#"))}
    # (and the `esp` extra: the decay function runs the email tools' sync, issue 22)
    for dependency in [*project["dependencies"], *project["optional-dependencies"]["esp"]]:
        name = Requirement(dependency).name.lower().replace("_", "-")
        assert name in locked, f"{name}: run `make lock`"


def test_the_plan_deploys_every_entry_point() -> None:
    chosen = config.DeployConfig(project="leadscore-demo-42", region="europe-west1")
    assert set(_targets()) == {f.entry for f in plan.functions(chosen)}


def _venv_for(minor: str, built: Path) -> Path:
    """A virtual environment with exactly the lock, reused while the lock is unchanged."""
    python = _interpreter(minor)
    if python is None:
        # a deploy runtime left untested is a failure, not a skip (as in the Makefile)
        pytest.fail(f"Python {minor} is missing: install it with 'pyenv install {minor}'",
                    pytrace=False)
    home = ROOT / f".venv-bundle-{minor}"
    stamp = home / "lock-digest"
    if stamp.exists() and stamp.read_text() == bundle.lock_digest():
        return home
    shutil.rmtree(home, ignore_errors=True)
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        steps = [[str(uv), "venv", "--quiet", "--python", python, str(home)],
                 [str(uv), "pip", "install", "--quiet", "--require-hashes",
                  "--compile-bytecode", "--python", str(home / "bin" / "python"),
                  "-r", str(built / "requirements.txt")]]
    else:
        steps = [[python, "-m", "venv", str(home)],
                 [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--require-hashes", "-r", str(built / "requirements.txt")]]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900,
                              check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    stamp.write_text(bundle.lock_digest())
    return home


@pytest.fixture(scope="module", params=MINORS)
def venv(request: pytest.FixtureRequest, built: Path) -> Path:
    return _venv_for(request.param, built)


@pytest.fixture
def serve(venv: Path, built: Path, firestore_emulator: str) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []
    collection = f"bundle_{uuid.uuid4().hex[:8]}"

    def start(targets: dict[str, str]) -> dict[str, str]:
        bases = {}
        for (target, signature), port in zip(targets.items(), free_ports(len(targets)),
                                             strict=True):
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")},
                   "LEADSCORE_STORE": "firestore", "LEADSCORE_FIRESTORE_COLLECTION": collection,
                   "GOOGLE_CLOUD_PROJECT": PROJECT, "FIRESTORE_EMULATOR_HOST": firestore_emulator,
                   "LEADSCORE_API_TOKEN": TOKEN, "PYTHONPATH": ""}
            started.append(subprocess.Popen(
                [str(venv / "bin" / "functions-framework"), f"--target={target}",
                 f"--signature-type={signature}", f"--port={port}", "--host=127.0.0.1"],
                cwd=built, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True))
            bases[target] = f"http://127.0.0.1:{port}"
        for target, base in bases.items():  # they start side by side; wait for each
            for _ in range(300):
                try:
                    requests.get(base, timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            else:
                raise AssertionError(f"{target} did not start")
        # a server that could not bind its port has exited: whatever answered is not it
        assert all(process.poll() is None for process in started), "a server exited"
        return bases

    yield start
    for process in started:  # gunicorn's graceful stop takes seconds: nothing to save here
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_every_entry_point_runs_from_the_bundle(serve: Any, venv: Path) -> None:
    # GIVEN every target of main.py started from the bundle as Cloud Run would
    events = _event_entries()
    bases = serve({t: "cloudevent" if t in events else "http" for t in _targets()})
    # THEN the HTTP functions answer a request without a credential as designed (no 5xx)
    for target, base in bases.items():
        if target not in events:
            answer = requests.post(base, timeout=30, data=b"{}",
                                   headers={"Content-Type": "application/json"})
            assert answer.status_code < 500, (venv.name, target, answer.text[:200])
    # WHEN an event is ingested over HTTP
    answer = requests.post(bases["ingest"], timeout=30,
                           headers={"Authorization": f"Bearer {TOKEN}"},
                           json={"type": "activity", "email": "bundle@example.com",
                                 "source": "test", "idempotency_key": "b1",
                                 "occurred_at": "2026-11-01T10:00:00Z",
                                 "activity": "webinar_attended"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == 1
    # AND the scheduler's Pub/Sub message arrives as a CloudEvent
    message = {"message": {"data": base64.b64encode(b"{}").decode(), "messageId": "1"},
               "subscription": f"projects/{PROJECT}/subscriptions/decay"}
    tick = requests.post(bases["inactivity_decay"], timeout=60, data=json.dumps(message),
                         headers={
        "Content-Type": "application/json", "ce-id": "1", "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/decay",
        "ce-time": "2026-12-20T05:00:00Z"})
    # THEN both answer from the bundle alone, on the Firestore emulator
    assert tick.status_code == 200, tick.text
    # AND the lead is readable through the API, on this Python (its address in the body)
    lead = requests.post(f"{bases['leads_api']}/leads/lookup", timeout=30,
                         json={"email": "bundle@example.com"},
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert lead.status_code == 200, lead.text


def test_the_bundle_carries_the_email_tools_clients(venv: Path, built: Path) -> None:
    # GIVEN the bundle's environment (the lock alone); WHEN the decay function's sync loads
    # the email tools' official clients (issue 22: imported on the first sync call only)
    probe = ("import leadscore.integrations.esp.mailchimp, sys; "
             "assert 'mailchimp_marketing' not in sys.modules; "
             "import mailchimp_marketing, brevo, sendgrid; print('ok')")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=built,
                          capture_output=True, text=True, timeout=120, check=False)
    # THEN they are there, and importing our module did not load its client
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
