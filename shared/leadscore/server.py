"""`leadscore serve`: every function on one local port, at `/<function_name>/...`.

Each function gets its own functions-framework app (exactly what Cloud Run runs), mounted
under its name with werkzeug's DispatcherMiddleware; `/healthz` answers on the root with the
store, the rules version, the functions and every registered provider (configured or not;
never a secret).

It runs on gunicorn with threads (`gthread`), the server the functions-framework itself
uses in production; `--dev` runs werkzeug's server with its reloader instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Request, Response

from leadscore.catalog import FUNCTIONS
from leadscore.container import container


def default_source() -> Path:
    """functions/main.py of this checkout (editable install) or of the working folder."""
    here = Path(__file__).resolve().parents[2] / "functions" / "main.py"
    return here if here.exists() else Path.cwd() / "functions" / "main.py"


def _root(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    request = Request(environ)
    if request.path in ("/healthz", "/"):
        app = container()
        from leadscore.providers.registry import REGISTRY

        body = {"status": "ok", "store": app.settings.store.split(":", 1)[0],
                "rules_version": app.rules.version, "functions": sorted(FUNCTIONS),
                "providers": REGISTRY.describe(app.settings)}
        response = Response(json.dumps(body), mimetype="application/json")
        health_check(app, body, response)  # issue 21: 503 when the store cannot be used
    else:
        body = {"error": "not_found", "message": f"no function at {request.path}; try one of "
                + ", ".join(f"/{name}" for name in sorted(FUNCTIONS))}
        response = Response(json.dumps(body), status=404, mimetype="application/json")
    result: Iterable[bytes] = response(environ, start_response)
    return result


class _Mounts(DispatcherMiddleware):
    """Dispatch by prefix; `/ingest` reaches its app as `/`, not as a redirect to `/ingest/`."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        script = environ.get("PATH_INFO", "")
        for prefix, app in self.mounts.items():
            if script == prefix or script.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = script[len(prefix):] or "/"
                result: Iterable[bytes] = app(environ, start_response)
                return result
        return _root(environ, start_response)


def build_app(source: Path | None = None) -> DispatcherMiddleware:
    import functions_framework

    src = str(source or default_source())
    mounts = {f"/{name}": functions_framework.create_app(name, src, kind)  # type: ignore[no-untyped-call]
              for name, kind in FUNCTIONS.items()}
    return _Mounts(_root, mounts)


def _scrub_access_logs() -> None:
    """Request paths can hold addresses (`/leads_api/leads/ana@example.com`): both servers'
    loggers print lead ids instead. Query strings and fragments are not logged at all: a
    plain HTML form without `method` submits by GET, so `?email=..&first_name=..` carried
    names, and a raw request line can carry `#...` too. Both servers' lines are JSON, as
    every other line of leadscore's (gunicorn's access lines: `JsonLogger.access`)."""
    import logging
    import re

    from leadscore.logs import JsonFormatter, ScrubFilter

    after_path = re.compile(r"[?#][^\s\"]*")
    colours = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours its lines for a terminal

    class _PathOnly(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            message = colours.sub("", record.getMessage())
            record.msg, record.args = after_path.sub("?…", message), ()
            return True

    for name in ("werkzeug", "gunicorn.access"):
        logging.getLogger(name).addFilter(_PathOnly())
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error"):
        logging.getLogger(name).addFilter(ScrubFilter())
    werkzeug = logging.getLogger("werkzeug")  # `--dev`: werkzeug adds no handler of its own
    if not any(isinstance(h.formatter, JsonFormatter) for h in werkzeug.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        werkzeug.addHandler(handler)
        werkzeug.setLevel(logging.INFO)
        werkzeug.propagate = False  # written here once, not again by a root handler


def request_url(raw_path: str) -> str:
    """The path a request asked for, without its query string or fragment (either can carry
    a form's names; the path's addresses are scrubbed when the line is written)."""
    return raw_path.split("?", 1)[0].split("#", 1)[0]


def _json_logger() -> type:
    """gunicorn's logger, writing JSON lines: its own messages as `JsonFormatter` writes
    ours, and one access line per request with Cloud Logging's `httpRequest` fields."""
    from gunicorn.glogging import Logger  # type: ignore[import-untyped]

    from leadscore.logs import JsonFormatter

    class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn is untyped
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(JsonFormatter())

        def access(self, resp: Any, req: Any, environ: dict[str, Any],
                   request_time: Any) -> None:
            if not self.access_log_enabled:
                return
            status = _status_code(resp)
            url = request_url(str(getattr(req, "path", "") or environ.get("RAW_URI", "")))
            method = str(environ.get("REQUEST_METHOD", ""))[:16]
            latency = request_time.total_seconds()
            http_request = {"requestMethod": method, "requestUrl": url, "status": status,
                            "latency": f"{latency:.6f}s",
                            "responseSize": str(getattr(resp, "sent", 0) or 0),
                            "protocol": str(environ.get("SERVER_PROTOCOL", ""))[:16]}
            self.access_log.info("%s %s %s", method, url, status,
                                 extra={"fields": {"httpRequest": http_request}})

    return JsonLogger


def _status_code(resp: Any) -> int:
    try:
        return int(str(getattr(resp, "status", "") or "").split(None, 1)[0])
    except (ValueError, IndexError):
        return 0


# The longest request line (method, path, query, version) the local server reads. The
# functions-framework sets 0 (no limit) because Google's front end bounds URLs before Cloud
# Run; nothing does in front of `leadscore serve`, where 0 let one request line of 100 MiB
# grow a worker by 145 MB. 8190 is gunicorn's largest allowed value, and far above any URL
# leadscore makes (a leads-API cursor or a dashboard filter is under 200 bytes).
MAX_REQUEST_LINE = 8190
_CLIENT_ERRORS = {"LimitRequestLine": (414, "request_line_too_long"),
                  "LimitRequestHeaders": (431, "headers_too_large")}


def _json_errors_worker() -> type:
    """gunicorn's threaded worker, answering a request it cannot parse (a line or headers
    over the limits, a malformed line) with a JSON error like every other refusal of
    leadscore's, instead of gunicorn's HTML page; anything else is gunicorn's as before."""
    from gunicorn import util  # type: ignore[import-untyped]
    from gunicorn.http import errors  # type: ignore[import-untyped]
    from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

    class JsonErrorsWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
        def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
            if not isinstance(exc, errors.ParseException) or isinstance(
                    exc, (errors.ConfigurationProblem, errors.InvalidResponseHeader,
                          errors.InvalidResponseHeaderName)):
                super().handle_error(req, client, addr, exc)
                return
            status, code = _CLIENT_ERRORS.get(type(exc).__name__, (400, "bad_request"))
            self.log.warning("refused a request it could not parse: %s", type(exc).__name__)
            body = json.dumps({"error": code, "message": _PARSE_MESSAGES.get(
                code, "the request line or headers could not be parsed")}).encode()
            head = (f"HTTP/1.1 {status} {code.replace('_', ' ')}\r\nConnection: close\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
            try:
                util.write_nonblock(client, head.encode("latin-1") + body)
            except OSError:
                pass  # the client has gone: nothing to tell

    return JsonErrorsWorker


_PARSE_MESSAGES = {
    "request_line_too_long": f"the request line is longer than {MAX_REQUEST_LINE} bytes",
    "headers_too_large": "too many request headers, or one too long"}


def run_gunicorn(app: Any, host: str, port: int, workers: int = 1, threads: int = 8,
                 access_log: bool = True) -> None:
    """Serve a WSGI app on gunicorn's threaded workers, the way the functions-framework does
    in production (no request timeout; one process, many threads, unless told otherwise).

    The app is built before the workers fork; nothing in it holds a connection yet (the
    container builds the store on a worker's first request)."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    options = {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
               "worker_class": _json_errors_worker(), "timeout": 0,
               "logger_class": _json_logger(),
               "limit_request_line": MAX_REQUEST_LINE,
               "accesslog": "-" if access_log else None, "loglevel": "warning"}

    class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    _scrub_access_logs()
    _Server().run()


def serve(host: str, port: int, source: Path | None = None, *, dev: bool = False,
          workers: int = 1, threads: int = 8, access_log: bool = True) -> None:
    if dev:  # werkzeug's server, restarted by its reloader when a source file changes
        from werkzeug.serving import run_simple

        _scrub_access_logs()
        run_simple(host, port, build_app(source), threaded=True, use_reloader=True,
                   reloader_type="stat")  # watchdog on a big venv can overflow inotify
        return
    run_gunicorn(build_app(source), host, port, workers=workers, threads=threads,
                 access_log=access_log)


def health_check(app: Any, body: dict[str, Any], response: Response) -> None:
    problem = app.store_health()
    if problem is not None:
        body.update(status="unavailable", problem=problem)
        response.set_data(json.dumps(body))
        response.status_code = 503
