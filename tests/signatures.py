"""Signatures computed in tests with each provider's documented algorithm (not our code)."""

from __future__ import annotations

import base64
import hashlib
import hmac


def stripe_style(body: bytes, secret: str, timestamp: int) -> str:
    """Stripe: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def base64_hmac(body: bytes, secret: str) -> str:
    """Shopify and WooCommerce: base64(HMAC-SHA256(secret, body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
