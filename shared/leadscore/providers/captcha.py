"""Cloudflare Turnstile / Google reCAPTCHA verification (both take the same request).

POST `secret`, `response` (and `remoteip`) form-encoded to the verifier's URL
(`LEADSCORE_CAPTCHA_VERIFY_URL`; Turnstile's by default) and read `{"success": bool}`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from leadscore.errors import TransientError

TURNSTILE_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"


def verify_token(url: str, secret: str, token: str, remote_ip: str | None) -> bool:
    fields = {"secret": secret, "response": token}
    if remote_ip:
        fields["remoteip"] = remote_ip
    if urllib.parse.urlparse(url).scheme not in ("https", "http"):
        raise TransientError("LEADSCORE_CAPTCHA_VERIFY_URL must be an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=urllib.parse.urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - our setting
            body = json.loads(answer.read())
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        raise TransientError(f"captcha verifier unavailable: {type(exc).__name__}") from None
    return bool(isinstance(body, dict) and body.get("success") is True)
