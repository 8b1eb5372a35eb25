"""A fake of Mailchimp's Marketing API v3 (the calls leadscore makes), from its reference.

Enforced: HTTP Basic auth with the API key as password (401 otherwise); paths under
/3.0/lists/{list_id} (404 for another audience); merge fields created once with a tag of
at most 10 characters (A-Z, 0-9, _) and a known type, a dropdown with `options.choices`;
batch subscribe/update with at most 500 members, `update_existing`, merge values checked
against their field (number: numeric; dropdown: one of its choices; text: at most 255
characters) and refused per member in `errors[]`; members addressed by the MD5 of the
lower-cased email (404 for an unknown hash); tags active/inactive (204); archive by DELETE;
an archived member re-added by PUT with `status_if_new`; an address in `compliance`
refused per member, like one in a compliance state. At most 10 simultaneous
connections: the 11th gets 429 (Mailchimp's documented limit). Errors are
application/problem+json. `fail_next` queues forced answers (429, 500...).

It counts what a marketer would see change: `field_changes[email]` (a batch that changes
a value) and `tag_events` (a tag going active or inactive), so a retry that repeats the
same values shows up as no change.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections import Counter
from typing import Any

from werkzeug.wrappers import Request, Response

from fakes.server import FakeApi

TYPES = {"text", "number", "address", "phone", "date", "url", "imageurl", "radio",
         "dropdown", "birthday", "zip"}
TAG = re.compile(r"^[A-Z0-9_]{1,10}$")
MAX_CONNECTIONS = 10


def problem(status: int, title: str, detail: str = "") -> tuple[int, Any]:
    return status, {"type": "https://mailchimp.com/developer/marketing/docs/errors/",
                    "title": title, "status": status, "detail": detail,
                    "instance": "00000000-fake"}


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


class MailchimpFake(FakeApi):
    def __init__(self, api_key: str, list_id: str, delay_s: float = 0.0) -> None:
        super().__init__()
        self.api_key, self.list_id, self.delay_s = api_key, list_id, delay_s
        self.merge_fields: dict[str, dict[str, Any]] = {
            "FNAME": {"tag": "FNAME", "name": "First Name", "type": "text"}}
        self.members: dict[str, dict[str, Any]] = {}  # hash -> member
        self.field_changes = Counter[str]()
        self.tag_events: list[tuple[str, str, str]] = []  # (email, tag, active|inactive)
        self.batch_sizes: list[int] = []
        # addresses Mailchimp refuses for good (compliance state: unsubscribed, bounced,
        # or permanently deleted); the batch answers 200 with a per-member error
        self.compliance: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.refused_for_connections = 0
        self._gate = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        with self._gate:  # counted outside the handler's lock: real concurrency
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            too_many = self.in_flight > MAX_CONNECTIONS
        try:
            if too_many:
                self.refused_for_connections += 1
                return self.answer(*problem(429, "Too Many Requests",
                                            "You have exceeded the limit of 10 simultaneous "
                                            "connections."))(environ, start_response)
            time.sleep(self.delay_s)
            return super().__call__(environ, start_response)
        finally:
            with self._gate:
                self.in_flight -= 1

    # -- views for tests --------------------------------------------------------------------
    def member(self, email: str) -> dict[str, Any] | None:
        return self.members.get(md5(email))

    def active(self) -> dict[str, dict[str, Any]]:
        return {m["email_address"]: m for m in self.members.values() if not m["archived"]}

    # -- the API ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        expected = base64.b64encode(f"anystring:{self.api_key}".encode()).decode()
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Basic ") or not _password_ok(auth, self.api_key, expected):
            return self.answer(*problem(401, "API Key Invalid", "Your API key may be invalid"))
        prefix = f"/3.0/lists/{self.list_id}"
        if not request.path.startswith(prefix):
            return self.answer(*problem(404, "Resource Not Found", "audience not found"))
        rest = request.path.removeprefix(prefix)
        body: Any = None
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                body = json.loads(request.get_data() or b"null")
            except ValueError:
                return self.answer(*problem(400, "JSON Schema Error", "invalid JSON"))
        with_hash = re.fullmatch(r"/members/([0-9a-f]{32})(/tags)?", rest)
        if rest == "/merge-fields" and request.method == "GET":
            return self.answer(200, {"merge_fields": list(self.merge_fields.values()),
                                     "total_items": len(self.merge_fields)})
        if rest == "/merge-fields" and request.method == "POST":
            return self.answer(*self._create_field(body))
        if rest == "" and request.method == "POST":
            return self.answer(*self._batch(body))
        if rest == "" and request.method == "GET":  # the audience itself (GET /lists/{id})
            return self.answer(200, {"id": self.list_id, "name": "Newsletter",
                                     "stats": {"member_count": len(self.members)}})
        if with_hash and with_hash.group(2) and request.method == "POST":
            return self.answer(*self._tags(with_hash.group(1), body))
        if with_hash and not with_hash.group(2):
            return self.answer(*self._member(request.method, with_hash.group(1), body))
        return self.answer(*problem(404, "Resource Not Found", "no such endpoint"))

    def _create_field(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("name") or body.get("type") not in TYPES:
            return problem(400, "Invalid Resource", "name and a valid type are required")
        tag = str(body.get("tag", ""))
        if not TAG.match(tag):
            return problem(400, "Invalid Resource", "merge tag: 1-10 characters A-Z 0-9 _")
        if tag in self.merge_fields:
            return problem(400, "Invalid Resource", "A Merge Field with the tag already exists")
        if body["type"] == "dropdown" and not (body.get("options") or {}).get("choices"):
            return problem(400, "Invalid Resource", "dropdown needs options.choices")
        self.merge_fields[tag] = {"tag": tag, "name": body["name"], "type": body["type"],
                                  "options": body.get("options") or {}}
        return 200, self.merge_fields[tag]

    def _bad_value(self, fields: Any) -> str | None:
        if not isinstance(fields, dict):
            return "merge_fields must be an object"
        for tag, value in fields.items():
            field = self.merge_fields.get(tag)
            if field is None:
                return f"Your merge fields were invalid: {tag} does not exist"
            if field["type"] == "number" and (isinstance(value, bool) or
                                              not isinstance(value, int | float)):
                return f"{tag} must be a number"
            if field["type"] == "dropdown" and value not in field["options"].get("choices", []):
                return f"{tag} must be one of the choices"
            if field["type"] == "text" and len(str(value)) > 255:
                return f"{tag} is too long"
        return None

    def _batch(self, body: Any) -> tuple[int, Any]:
        members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(members, list) or len(members) > 500:
            return problem(400, "Invalid Resource", "members: a list of at most 500")
        self.batch_sizes.append(len(members))
        new, updated, errors = [], [], []
        for item in members:
            email = str(item.get("email_address", ""))
            bad = self._bad_value(item.get("merge_fields", {})) if "@" in email else (
                "Invalid email address")
            if email.lower() in self.compliance:  # Mailchimp's wording, email included
                bad = (f"{email} is in a compliance state due to unsubscribe, bounce, or "
                       "compliance review and cannot be subscribed.")
            if bad:
                errors.append({"email_address": email, "error": bad,
                               "error_code": "ERROR_GENERIC"})
                continue
            key = md5(email)
            current = self.members.get(key)
            if current is not None and not current["archived"] and not body.get(
                    "update_existing"):
                errors.append({"email_address": email, "error": "already a member",
                               "error_code": "ERROR_CONTACT_EXISTS"})
                continue
            if current is None or current["archived"]:
                current = self._fresh(email, item.get("status_if_new", "subscribed"), current)
                new.append({"email_address": email})
            else:
                updated.append({"email_address": email})
            merged = {**current["merge_fields"], **item.get("merge_fields", {})}
            if merged != current["merge_fields"]:
                self.field_changes[email] += 1
                current["merge_fields"] = merged
        return 200, {"new_members": new, "updated_members": updated, "errors": errors,
                     "total_created": len(new), "total_updated": len(updated),
                     "error_count": len(errors)}

    def _fresh(self, email: str, status: str, old: dict[str, Any] | None) -> dict[str, Any]:
        member = {"email_address": email, "status": status, "merge_fields": {},
                  "tags": set(), "archived": False}
        if old is not None:  # re-added from the archive: Mailchimp keeps fields and tags
            member.update(merge_fields=old["merge_fields"], tags=old["tags"])
        self.members[md5(email)] = member
        return member

    def _tags(self, key: str, body: Any) -> tuple[int, Any]:
        member = self.members.get(key)
        if member is None or member["archived"]:
            return problem(404, "Resource Not Found", "member not found")
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list) or any(t.get("status") not in ("active", "inactive")
                                             for t in tags):
            return problem(400, "Invalid Resource", "tags: name and status active|inactive")
        for tag in tags:
            on = tag["status"] == "active"
            if on != (tag["name"] in member["tags"]):
                (member["tags"].add if on else member["tags"].discard)(tag["name"])
                self.tag_events.append((member["email_address"], tag["name"], tag["status"]))
        return 204, ""

    def _member(self, method: str, key: str, body: Any) -> tuple[int, Any]:
        member = self.members.get(key)
        if method == "PUT":
            email = str((body or {}).get("email_address", ""))
            if md5(email) != key:
                return problem(400, "Invalid Resource", "email does not match the hash")
            if member is None or member["archived"]:
                member = self._fresh(email, body.get("status_if_new", "subscribed"), member)
            return 200, _public(member)
        if member is None or member["archived"]:
            return problem(404, "Resource Not Found", "member not found")
        if method == "DELETE":
            member["archived"] = True
            return 204, ""
        if method == "PATCH":
            status = (body or {}).get("status")
            if status not in (None, "subscribed", "unsubscribed", "cleaned", "pending",
                              "transactional"):
                return problem(400, "Invalid Resource", "bad status")
            if status:
                member["status"] = status
            return 200, _public(member)
        if method == "GET":
            return 200, _public(member)
        return problem(405, "Method Not Allowed", method)


def _public(member: dict[str, Any]) -> dict[str, Any]:
    return {**member, "tags": [{"name": t} for t in sorted(member["tags"])]}


def _password_ok(header: str, api_key: str, expected: str) -> bool:
    try:
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    except ValueError:
        return False
    return decoded.partition(":")[2] == api_key or header == f"Basic {expected}"
