"""`leadscore.js`, served by the `track` function: one file in the package, its version a
digest of its bytes. `/leadscore.js` is cached for minutes (pages pick up a new release
soon); `/leadscore-<version>.js` never changes and is cached for a year."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from flask import Response

from leadscore.errors import NotFound

ANONYMOUS_ID_FIELD = "ls_anonymous_id"  # the hidden form field leadscore.js adds


@cache
def source() -> bytes:
    return resources.files("leadscore").joinpath("static/leadscore.js").read_bytes()


def version() -> str:
    return hashlib.sha256(source()).hexdigest()[:12]


def serve(name: str, if_none_match: str | None) -> Response:
    tag = f'"{version()}"'
    if name == "leadscore.js":
        cache_control = "public, max-age=300"
    elif name == f"leadscore-{version()}.js":
        cache_control = "public, max-age=31536000, immutable"
    else:
        raise NotFound(f"no such script; the current one is leadscore-{version()}.js")
    headers = {"Cache-Control": cache_control, "ETag": tag,
               "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"}
    if if_none_match and tag in if_none_match:
        return Response(status=304, headers=headers)
    return Response(source(), mimetype="application/javascript", headers=headers)
