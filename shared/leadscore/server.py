"""`leadscore serve`: every function on one local port, at `/<function_name>/...`.

Each function gets its own functions-framework app (exactly what Cloud Run runs), mounted
under its name with werkzeug's DispatcherMiddleware; `/healthz` answers on the root with the
store, the rules version, the functions and every registered provider (configured or not;
never a secret).
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


def serve(host: str, port: int, source: Path | None = None) -> None:
    import logging

    from werkzeug.serving import run_simple

    from leadscore.logs import ScrubFilter

    logging.getLogger("werkzeug").addFilter(ScrubFilter())
    run_simple(host, port, build_app(source), threaded=True, use_reloader=False)


def health_check(app: Any, body: dict[str, Any], response: Response) -> None:
    problem = app.store_health()
    if problem is not None:
        body.update(status="unavailable", problem=problem)
        response.set_data(json.dumps(body))
        response.status_code = 503
