"""Signature helpers every provider module shares. Always over the raw bytes, always in
constant time, always against every active secret (so secrets can rotate)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from datetime import datetime

from leadscore import logs
from leadscore.errors import Unauthorized


def secrets(value: str) -> list[str]:
    """A comma-separated setting as a list of active secrets."""
    return [s.strip() for s in value.split(",") if s.strip()]


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def any_matches(presented: Iterable[bytes], expected: Iterable[bytes]) -> bool:
    """True if any presented value equals any expected one; every pair is compared."""
    found = False
    for candidate in presented:
        for wanted in expected:
            found |= hmac.compare_digest(candidate, wanted)
    return found


# A secret nobody has (new in each process). An endpoint whose secret is not set checks a
# request against it, so a stranger gets the very answer a configured endpoint gives a
# wrong or missing signature: which tools a company uses is not a stranger's to learn (an
# audit listed them from "not configured: set LEADSCORE_..." answers). The operator's hint
# goes to the log.
DECOY = base64.b64encode(os.urandom(32)).decode()


def require_configured(active: list[str], setting: str) -> list[str]:
    """`active`, or the decoy (a refusal like a wrong secret's) with a logged hint."""
    if active:
        return active
    logs.warning("a request reached an endpoint that is not configured", setting=setting)
    return [DECOY]


def verify_base64_hmac(raw: bytes, header: str | None, active: list[str], setting: str,
                       header_name: str) -> None:
    """Shopify and WooCommerce: base64(HMAC-SHA256(secret, raw body)) in one header."""
    active = require_configured(active, setting)
    if not header:
        raise Unauthorized(f"missing {header_name} header")
    try:
        presented = base64.b64decode(header.strip(), validate=True)
    except ValueError:
        raise Unauthorized(f"{header_name} is not base64") from None
    if not any_matches([presented], [hmac_sha256(s, raw) for s in active]):
        raise Unauthorized(f"{header_name} does not match the body")


UNIX_STAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only: `²` passes str.isdigit()


def unix_stamp(text: str | None) -> int | None:
    """Unix seconds from a header, strictly: ASCII digits, at most 12 (no 5,000-digit
    conversions, no superscripts); None for anything else."""
    if text is None or not UNIX_STAMP.fullmatch(text):
        return None
    return int(text)


def parse_timestamped(header: str | None, header_name: str) -> tuple[int, list[bytes]]:
    """`t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (Stripe's scheme, and our generic one)."""
    if not header:
        raise Unauthorized(f"missing {header_name} header")
    stamp: int | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and unix_stamp(value) is not None:
            stamp = unix_stamp(value)
        elif key == "v1":
            try:
                signatures.append(bytes.fromhex(value))
            except ValueError:
                continue
    if stamp is None or not signatures:
        raise Unauthorized(f"{header_name} needs t=<timestamp> and at least one v1=<hex>")
    return stamp, signatures


def verify_timestamped(raw: bytes, header: str | None, active: list[str], now: datetime,
                       tolerance_s: int, setting: str, header_name: str) -> None:
    """HMAC-SHA256 over `{t}.{raw body}`, within `tolerance_s` seconds of now."""
    active = require_configured(active, setting)
    stamp, presented = parse_timestamped(header, header_name)
    if abs(now.timestamp() - stamp) > tolerance_s:
        raise Unauthorized(f"{header_name} timestamp is outside the {tolerance_s} s tolerance")
    message = str(stamp).encode() + b"." + raw
    if not any_matches(presented, [hmac_sha256(s, message) for s in active]):
        raise Unauthorized(f"{header_name} does not match the body")
