"""A small client of the Chrome DevTools Protocol over `--remote-debugging-pipe` (no
WebSocket library needed): Chromium reads commands on fd 3 and writes answers on fd 4, each
a JSON message ended by a NUL byte. Every wait is bounded."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class CdpError(RuntimeError):
    pass


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Browser:
    def __init__(self, timeout: float = 20) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="leadscore-chromium-")
        self._log = open(os.path.join(self.profile, "stderr.log"), "wb")
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()
        # above 9, so that wiring them to 3 and 4 never overwrites one with the other
        to_child, from_child = (_high(to_child), _high(from_child))

        # the child reads our commands on fd 3 and answers on fd 4; bash wires them
        # (dash takes one-digit fds only)
        wire = f'exec "$@" 3<&{to_child} 4>&{from_child}'
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", wire, "bash", CHROMIUM, "--headless", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-sync", "--disable-background-networking",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            pass_fds=(to_child, from_child), start_new_session=True)
        os.close(to_child)
        os.close(from_child)
        self._next, self._buffer = 0, b""

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            for reply in self._messages(deadline):
                if reply.get("id") == self._next:
                    if "error" in reply:
                        raise CdpError(f"{method}: {reply['error']}")
                    result: dict[str, Any] = reply.get("result", {})
                    return result

    def _messages(self, deadline: float) -> list[dict[str, Any]]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CdpError("Chromium did not answer in time")
        ready, _, _ = select.select([self._in], [], [], left)
        if ready:
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise CdpError("Chromium closed the pipe: " + self._errors())
            self._buffer += chunk
        *whole, self._buffer = self._buffer.split(b"\0")
        return [json.loads(m) for m in whole if m]

    def _errors(self) -> str:
        with open(os.path.join(self.profile, "stderr.log"), errors="replace") as log:
            lines = [line for line in log if "dbus" not in line]
        return "".join(lines[-8:])

    def open(self, url: str, before_load: str | None = None) -> str:
        """A new tab in a fresh browser context (its own cookies); its session id."""
        context = self.call("Target.createBrowserContext")["browserContextId"]
        target = self.call("Target.createTarget", url="about:blank",
                           browserContextId=context)["targetId"]
        session: str = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Page.enable", session)
        if before_load:
            self.call("Page.addScriptToEvaluateOnNewDocument", session, source=before_load)
        self.call("Page.navigate", session, url=url)
        self.wait_for(session, "document.readyState === 'complete' && !!window.leadscore")
        return session

    def eval(self, session: str, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, session: str, expression: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.eval(session, expression):
                    return
            except CdpError:
                pass  # navigating: the context is being replaced
            time.sleep(0.1)
        raise CdpError(f"timed out waiting for {expression}")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (CdpError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)
        for fd in (self._in, self._out):
            os.close(fd)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
