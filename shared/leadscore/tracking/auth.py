"""Write keys and CORS for the `track` function.

A write key comes as HTTP Basic username with an empty password (Segment's libraries), as
`X-Write-Key`, or as `writeKey` in the body (the browser library when it cannot set
headers). Server keys are secrets and may send anything; client keys are public (they sit
in web pages), so they only work from an allowed origin, for page/track/identify, and
name visitors by `anonymousId` only (`tracking.mapping.map_message`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Literal

from leadscore.errors import Forbidden, Unauthorized

Kind = Literal["server", "client"]
CLIENT_TYPES = frozenset({"page", "track", "identify", "batch"})


@dataclass(frozen=True)
class Caller:
    kind: Kind
    origin: str | None  # the allowed origin of a client key's request


def basic_username(authorization: str | None) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _matches(candidate: str, keys: list[str]) -> bool:
    found = False
    for key in keys:  # no early exit: the time taken says nothing about which key matched
        found |= hmac.compare_digest(candidate.encode(), key.encode())
    return found


def allowed_origin(origin: str | None, allowed: list[str]) -> bool:
    return bool(origin) and (origin in allowed or "*" in allowed)


def identify_caller(key: str | None, server_keys: list[str], client_keys: list[str],
                    origin: str | None, allowed_origins: list[str]) -> Caller:
    """Which kind of caller this is, or 401 (no or unknown key) / 403 (client key from an
    origin that is not allowed)."""
    if not server_keys and not client_keys:  # answered as an unknown key; the hint is logged
        from leadscore.providers import signing  # rarely needed: not on the cold path

        server_keys = signing.require_configured(
            [], "LEADSCORE_TRACK_SERVER_KEYS or LEADSCORE_TRACK_CLIENT_KEYS")
    if not key:
        raise Unauthorized("missing write key: send it as the Basic auth username, "
                           "X-Write-Key or writeKey")
    if _matches(key, server_keys):
        return Caller("server", origin)
    if _matches(key, client_keys):
        if not allowed_origin(origin, allowed_origins):
            raise Forbidden("a client write key only works from an origin in "
                            "LEADSCORE_TRACK_ALLOWED_ORIGINS")
        return Caller("client", origin)
    raise Unauthorized("unknown write key")


def check_call(caller: Caller, call: str) -> None:
    """Client keys may only page, track and identify (and batch those)."""
    if caller.kind == "client" and call not in CLIENT_TYPES:
        raise Forbidden(f"a client write key cannot send {call} calls; use a server key")


def cors_headers(origin: str | None, allowed: list[str]) -> dict[str, str]:
    """CORS headers for an allowed origin; none at all for any other."""
    if not origin or not allowed_origin(origin, allowed):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Credentials": "false"}


PREFLIGHT = {"Access-Control-Allow-Methods": "POST, OPTIONS",
             # AnonymousId: RudderStack's JavaScript SDK sends the visitor's id as a header too
             "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Write-Key, "
                                             "AnonymousId",
             "Access-Control-Max-Age": "600"}
