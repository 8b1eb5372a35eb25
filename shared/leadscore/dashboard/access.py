"""Sign-in for the dashboard where the platform's identity (Cloud Run IAM) is not in front.

A session cookie is `expiry.signature`, the signature an HMAC-SHA256 of the expiry keyed by
a hash of the configured token list: rotating (or removing) any token changes the key and so
ends every session at once. The CSRF token of a form is an HMAC of a per-browser nonce
cookie (double submit, signed), so a page from another site cannot forge one."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

SESSION_COOKIE = "leadscore_dashboard"
CSRF_COOKIE = "leadscore_dashboard_csrf"
SESSION_LIFETIME = timedelta(hours=8)


def _key(tokens: list[str]) -> bytes:
    return hashlib.sha256(("\n".join(sorted(tokens))).encode()).digest()


def _sign(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def token_ok(given: str, tokens: list[str]) -> bool:
    """Constant time against every active token; no token configured accepts nothing."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given.encode(), token.encode())
    return found and bool(given)


def new_session(tokens: list[str], now: datetime) -> str:
    expires = str(int((now + SESSION_LIFETIME).timestamp()))
    return f"{expires}.{_sign(_key(tokens), 'session', expires)}"


def session_ok(cookie: str | None, tokens: list[str], now: datetime) -> bool:
    if not cookie or not tokens or "." not in cookie:
        return False
    expires, signature = cookie.split(".", 1)
    # ASCII digits only ("²".isdigit() is true), a bounded number, an ASCII signature:
    # compare_digest refuses other text with a TypeError (a 500), not a False
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12
            and signature.isascii()) or int(expires) <= now.timestamp():
        return False
    return hmac.compare_digest(signature, _sign(_key(tokens), "session", expires))


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(nonce: str, tokens: list[str]) -> str:
    return _sign(_key(tokens), "csrf", nonce)


def csrf_ok(nonce: str | None, given: str | None, tokens: list[str]) -> bool:
    if not nonce or not given or not given.isascii():  # compare_digest: ASCII text only
        return False
    return hmac.compare_digest(given, csrf_token(nonce, tokens))
