"""A fake of Brevo's contacts API v3 (the calls leadscore makes), from its reference.

Enforced: the `api-key` header (401 `unauthorized` otherwise); attributes created once in
category `normal` with type text, float, date or boolean (400 `duplicate_parameter` for a
second create); POST /contacts creates, or updates with `updateEnabled` (else 400
`duplicate_parameter`); POST /contacts/batch updates at most 100 existing contacts
(400 `invalid_parameter` otherwise, nothing stored); attribute values of their type
(float: a number; text: a string) and only existing attributes; `listIds` and
`unlinkListIds` of lists that exist (400 `document_not_found`). Forced answers
(`rate_limited()` with the documented x-sib-ratelimit-* headers, 500...) via `fail_next`.
It counts what a marketer sees change: `attribute_changes[email]` and `list_events`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from werkzeug.wrappers import Request, Response

from fakes.server import FakeApi

TYPES = {"text", "float", "date", "boolean"}


def error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"code": code, "message": message}


class BrevoFake(FakeApi):
    def __init__(self, api_key: str, lists: set[int]) -> None:
        super().__init__()
        self.api_key = api_key
        self.lists = set(lists)
        self.attributes: dict[str, str] = {"FIRSTNAME": "text", "LASTNAME": "text"}
        self.contacts: dict[str, dict[str, Any]] = {}  # lower-cased email -> contact
        self.attribute_changes = Counter[str]()
        self.list_events: list[tuple[str, int, str]] = []  # (email, list, added|removed)
        self.batch_sizes: list[int] = []

    def rate_limited(self, reset_s: int = 2, times: int = 1) -> None:
        self.fail_next(429, {"code": "too_many_requests", "message": "Too many requests"},
                       {"x-sib-ratelimit-limit": "10", "x-sib-ratelimit-remaining": "0",
                        "x-sib-ratelimit-reset": str(reset_s)}, times)

    def contact(self, email: str) -> dict[str, Any] | None:
        return self.contacts.get(email.lower())

    def handle(self, request: Request) -> Response:
        if request.headers.get("api-key") != self.api_key:
            return self.answer(*error(401, "unauthorized", "Key not found"))
        body: Any = None
        if request.method in ("POST", "PUT"):
            try:
                body = json.loads(request.get_data() or b"null")
            except ValueError:
                return self.answer(*error(400, "bad_request", "invalid JSON"))
        path = request.path.removeprefix("/v3")
        attribute = re.fullmatch(r"/contacts/attributes/normal/([A-Za-z0-9_]+)", path)
        if path == "/contacts/attributes" and request.method == "GET":
            return self.answer(200, {"attributes": [
                {"name": n, "category": "normal", "type": t} for n, t in self.attributes.items()]})
        if attribute and request.method == "POST":
            return self.answer(*self._create_attribute(attribute.group(1), body))
        if path == "/contacts" and request.method == "POST":
            return self.answer(*self._create(body))
        if path == "/contacts/batch" and request.method == "POST":
            return self.answer(*self._batch(body))
        return self.answer(*error(404, "document_not_found", "no such endpoint"))

    def _create_attribute(self, name: str, body: Any) -> tuple[int, Any]:
        kind = (body or {}).get("type")
        if kind not in TYPES:
            return error(400, "invalid_parameter", "type must be text, float, date, boolean")
        if name in self.attributes:
            return error(400, "duplicate_parameter", "Attribute name must be unique")
        self.attributes[name] = kind
        return 201, ""

    def _problem(self, contact: Any) -> str | None:
        if not isinstance(contact, dict) or "@" not in str(contact.get("email", "")):
            return "email is missing or invalid"
        for name, value in (contact.get("attributes") or {}).items():
            kind = self.attributes.get(name)
            if kind is None:
                return f"attribute {name} does not exist"
            if kind == "float" and (isinstance(value, bool) or
                                    not isinstance(value, int | float)):
                return f"attribute {name} must be a number"
            if kind == "text" and not isinstance(value, str):
                return f"attribute {name} must be text"
        for key in ("listIds", "unlinkListIds"):
            if any(i not in self.lists for i in contact.get(key) or []):
                return f"{key}: list not found"
        return None

    def _create(self, body: Any) -> tuple[int, Any]:
        problem = self._problem(body)
        if problem:
            return error(400, "invalid_parameter", problem)
        email = body["email"].lower()
        if email in self.contacts and not body.get("updateEnabled"):
            return error(400, "duplicate_parameter", "Contact already exist")
        created = email not in self.contacts
        self.contacts.setdefault(email, {"email": body["email"], "attributes": {},
                                         "listIds": set(), "emailBlacklisted": False})
        self._apply(body)
        return (201, {"id": len(self.contacts)}) if created else (204, "")

    def _batch(self, body: Any) -> tuple[int, Any]:
        contacts = (body or {}).get("contacts")
        if not isinstance(contacts, list) or not 1 <= len(contacts) <= 100:
            return error(400, "invalid_parameter", "contacts: 1 to 100 per request")
        for contact in contacts:  # all or nothing
            problem = self._problem(contact) or (
                None if contact["email"].lower() in self.contacts else "Contact does not exist")
            if problem:
                return error(400, "invalid_parameter", problem)
        self.batch_sizes.append(len(contacts))
        for contact in contacts:
            self._apply(contact)
        return 204, ""

    def _apply(self, update: dict[str, Any]) -> None:
        stored = self.contacts[update["email"].lower()]
        merged = {**stored["attributes"], **(update.get("attributes") or {})}
        if merged != stored["attributes"]:
            stored["attributes"] = merged
            self.attribute_changes[update["email"]] += 1
        for list_id in update.get("listIds") or []:
            if list_id not in stored["listIds"]:
                stored["listIds"].add(list_id)
                self.list_events.append((update["email"], list_id, "added"))
        for list_id in update.get("unlinkListIds") or []:
            if list_id in stored["listIds"]:
                stored["listIds"].discard(list_id)
                self.list_events.append((update["email"], list_id, "removed"))
        if "emailBlacklisted" in update:
            stored["emailBlacklisted"] = bool(update["emailBlacklisted"])
