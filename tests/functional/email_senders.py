"""How each email provider sends a fixture to us: its documented signing, its content type.

Every sender returns the keyword arguments of a test client's `open(...)`, signed with the
provider's documented algorithm (tests/signatures.py), never with our own verifier code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from conftest import EVENTS_DIR, NOW
from signatures import basic_auth, mailgun, mandrill

from functional.conftest import MANDRILL_URL, SECRETS, SENDGRID

NOW_TS = int(NOW.timestamp())
FIXTURES = EVENTS_DIR / "email"


def fixture(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / name).read_bytes()


def fixtures(provider: str) -> list[str]:
    return sorted(p.name for p in Path(FIXTURES / provider).iterdir() if p.suffix != ".md")


def sendgrid(raw: bytes) -> dict[str, Any]:
    return {"path": "/sendgrid", "data": raw, "content_type": "application/json",
            "headers": SENDGRID.headers(raw, NOW_TS)}


def mailgun_signed(raw: bytes, token: str | None = None) -> bytes:
    """The fixture with a real signature (the fixtures carry a placeholder): inside the JSON
    body, or as the top-level fields of a legacy form (whose timestamp is the event's)."""
    token = token or uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = {"timestamp": str(NOW_TS), "token": token,
                 "signature": mailgun(SECRETS["mailgun"], str(NOW_TS), token)}
    if not raw.lstrip().startswith(b"{"):
        form = dict(parse_qsl(raw.decode().strip(), keep_blank_values=True))
        return urlencode({**form, **signature}).encode()
    body = json.loads(raw)
    body["signature"] = signature
    return json.dumps(body).encode()


def mailgun_post(raw: bytes) -> dict[str, Any]:
    legacy = not raw.lstrip().startswith(b"{")
    return {"path": "/mailgun", "data": raw, "content_type":
            "application/x-www-form-urlencoded" if legacy else "application/json"}


def mailchimp(raw: bytes) -> dict[str, Any]:
    return {"path": f"/mailchimp?key={SECRETS['mailchimp']}", "data": raw,
            "content_type": "application/x-www-form-urlencoded"}


def mandrill_post(raw: bytes, key: str = SECRETS["mandrill"]) -> dict[str, Any]:
    params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
    return {"path": "/mandrill", "data": raw,
            "content_type": "application/x-www-form-urlencoded",
            "headers": {"X-Mandrill-Signature": mandrill(key, MANDRILL_URL, params)}}


def mailjet(raw: bytes, credentials: str = SECRETS["mailjet"]) -> dict[str, Any]:
    return {"path": "/mailjet", "data": raw, "content_type": "application/json",
            "headers": {"Authorization": basic_auth(credentials)}}


# provider -> (prepare the fixture once, then the request that delivers it)
SENDERS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], dict[str, Any]]]] = {
    "sendgrid": (lambda raw: raw, sendgrid),
    "mailgun": (mailgun_signed, mailgun_post),
    "mailchimp": (lambda raw: raw, mailchimp),
    "mandrill": (bytes.strip, mandrill_post),  # the file's final newline is not sent
    "mailjet": (lambda raw: raw, mailjet),
}


def deliver(client: Any, provider: str, raw: bytes) -> Any:
    """POST a prepared body as the provider would."""
    return client.open(method="POST", **SENDERS[provider][1](raw))
