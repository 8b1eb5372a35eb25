"""HTTP basic auth for providers that sign nothing and send credentials instead (Postmark,
SparkPost): `Authorization: Basic base64(user:password)`, compared in constant time against
every active `user:password` pair so credentials can rotate."""

from __future__ import annotations

import base64
import binascii
import hmac

from leadscore.errors import Unauthorized
from leadscore.providers import signing


def verify_basic(authorization: str | None, credentials: list[str], setting: str) -> None:
    credentials = signing.require_configured(credentials, setting)
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthorized("missing basic auth: configure user:password on the webhook")
    try:
        presented = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("basic auth is not base64") from None
    matched = False
    for pair in credentials:  # no early exit: the time taken says nothing about which matched
        matched |= hmac.compare_digest(presented, pair.encode())
    if not matched:
        raise Unauthorized("wrong basic auth credentials")
