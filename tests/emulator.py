"""Start and stop the real Firestore emulator (DESIGN.md §3), for tests and benchmarks.

Started directly with java in its own process group so that stopping it stops everything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class EmulatorUnavailable(RuntimeError):
    pass


def _sdk_root() -> Path:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorUnavailable("gcloud is not on PATH (install the Google Cloud CLI)")
    out = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"],
                         capture_output=True, text=True, timeout=60, check=False)
    root = Path(out.stdout.strip())
    jar = root / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
    if not jar.exists():
        raise EmulatorUnavailable(
            f"no Firestore emulator at {jar}: run `gcloud components install "
            "cloud-firestore-emulator` (or apt-get install google-cloud-cli-firestore-emulator)")
    return root


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket is held until all are chosen, so the
    kernel cannot hand one port out twice (two servers started side by side on one port:
    one failed to bind, and the test talked to the other)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Emulator:
    host: str
    process: subprocess.Popen[bytes]

    def wipe(self, project: str) -> None:
        url = f"http://{self.host}/emulator/v1/projects/{project}/databases/(default)/documents"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30).read()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _launch(command: list[str], port: int, name: str, ready: bytes | None,
            timeout: float) -> Emulator:
    """Start an emulator in its own process group; wait until `GET /` answers (`ready`)."""
    host = f"127.0.0.1:{port}"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    emulator = Emulator(host=host, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorUnavailable(f"the {name} emulator exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{host}/", timeout=2) as answer:
                if ready is None or answer.read().strip() == ready:
                    return emulator
        except OSError:
            time.sleep(0.2)
    emulator.stop()
    raise EmulatorUnavailable(f"the {name} emulator did not answer on {host} in {timeout:.0f} s")


def start(timeout: float = 60.0) -> Emulator:
    """The Firestore emulator, started with java directly so that stopping it stops it."""
    java = shutil.which("java")
    if java is None:
        raise EmulatorUnavailable("java is not on PATH (the emulator needs a JRE 11+)")
    jar = _sdk_root() / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
    port = free_port()
    return _launch([java, "-Duser.language=en", "-cp", str(jar),
                    "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
                    "--host=127.0.0.1", f"--port={port}"], port, "Firestore", b"Ok", timeout)


def start_pubsub(timeout: float = 60.0) -> Emulator:
    """The Pub/Sub emulator from the same SDK (DESIGN.md §3)."""
    script = _sdk_root() / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    if not script.exists():
        raise EmulatorUnavailable(
            f"no Pub/Sub emulator at {script}: run `gcloud components install pubsub-emulator`")
    port = free_port()
    return _launch([str(script), "--host=127.0.0.1", f"--port={port}"], port, "Pub/Sub", None,
                   timeout)


def wait_until_serving(base: str, tries: int = 150) -> None:
    """Wait for a `leadscore serve` at `base` to answer `/healthz` (not up yet, or busy)."""
    import requests

    for _ in range(tries):
        try:
            if requests.get(f"{base}/healthz", timeout=1).ok:
                return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise EmulatorUnavailable(f"leadscore serve at {base} did not start")
