"""A fake of SendGrid's Marketing Campaigns contacts API and ASM groups, from its reference.

Enforced: `Authorization: Bearer <key>` (401 otherwise); custom field definitions with a
name of letters, digits and underscores not starting with a digit, type Text, Number or
Date, unique (400); PUT /v3/marketing/contacts with at most 30,000 contacts, each with an
email, `custom_fields` keyed by field id (`e1_N`; names are refused) with values of the
field's type, `list_ids` that exist: answered 202 with a `job_id`, applied only when the
job completes (the first status check says `pending`, the next `completed`); search by
emails (404 when none is found); DELETE list members by contact ids (202); suppression
group members (201 / 204). Forced answers via `fail_next` (`rate_limited()` sends the
documented X-RateLimit-* headers with a Unix reset time).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from fakes.server import FakeApi

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def errors(status: int, message: str, field: str | None = None) -> tuple[int, Any]:
    return status, {"errors": [{"field": field, "message": message}]}


class SendGridFake(FakeApi):
    def __init__(self, api_key: str, lists: set[str], groups: set[int]) -> None:
        super().__init__()
        self.api_key = api_key
        self.lists = set(lists)
        self.groups = {g: set[str]() for g in groups}
        self.fields: dict[str, dict[str, str]] = {}  # id -> {name, field_type}
        self.contacts: dict[str, dict[str, Any]] = {}  # lower email -> contact
        self.jobs: dict[str, dict[str, Any]] = {}
        self.field_changes = Counter[str]()
        self.list_events: list[tuple[str, str, str]] = []  # (email, list, added|removed)
        # addresses SendGrid's validation refuses: the upsert is checked whole before the
        # job is made, so one of them answers 400 for the whole request, the error's
        # `field` naming the contact's index (contacts[n].email), never the address
        self.invalid_emails: set[str] = set()
        # addresses the import job itself refuses (accepted with 202, then the job's status
        # is `errored`, as SendGrid reports a job whose contacts failed): nothing applied
        self.job_error_emails: set[str] = set()

    def rate_limited(self, in_s: int = 1, times: int = 1) -> None:
        self.fail_next(429, {"errors": [{"field": None, "message": "too many requests"}]},
                       {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(time.time()) + in_s)}, times)

    def contact(self, email: str) -> dict[str, Any] | None:
        return self.contacts.get(email.lower())

    def by_name(self, email: str) -> dict[str, Any]:
        contact = self.contact(email) or {}
        return {self.fields[i]["name"]: v for i, v in contact.get("custom_fields", {}).items()}

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.answer(*errors(401, "authorization required"))
        body: Any = None
        if request.method in ("POST", "PUT"):
            try:
                body = json.loads(request.get_data() or b"null")
            except ValueError:
                return self.answer(*errors(400, "invalid JSON"))
        path, method = request.path, request.method
        if path == "/v3/marketing/field_definitions":
            if method == "GET":
                return self.answer(200, {"custom_fields": [
                    {"id": i, **f} for i, f in self.fields.items()], "reserved_fields": []})
            return self.answer(*self._define(body))
        if path == "/v3/marketing/contacts" and method == "PUT":
            return self.answer(*self._upsert(body))
        job = re.fullmatch(r"/v3/marketing/contacts/imports/([\w-]+)", path)
        if job and method == "GET":
            return self.answer(*self._job(job.group(1)))
        if path == "/v3/marketing/contacts/search/emails" and method == "POST":
            return self.answer(*self._search(body))
        members = re.fullmatch(r"/v3/marketing/lists/([\w-]+)/contacts", path)
        if members and method == "DELETE":
            return self.answer(*self._leave(members.group(1), request.args.get("contact_ids")))
        group = re.fullmatch(r"/v3/asm/groups/(\d+)/suppressions(?:/(.+))?", path)
        if group and int(group.group(1)) in self.groups:
            return self.answer(*self._suppress(int(group.group(1)), method, body,
                                               group.group(2)))
        return self.answer(*errors(404, "not found"))

    def _define(self, body: Any) -> tuple[int, Any]:
        name, kind = (body or {}).get("name", ""), (body or {}).get("field_type")
        if not NAME.match(str(name)) or kind not in ("Text", "Number", "Date"):
            return errors(400, "invalid name or field_type", "name")
        if any(f["name"] == name for f in self.fields.values()):
            return errors(400, "field name already exists", "name")
        field_id = f"e{len(self.fields) + 1}_{kind[0]}"
        self.fields[field_id] = {"name": name, "field_type": kind}
        return 200, {"id": field_id, "name": name, "field_type": kind}

    def _upsert(self, body: Any) -> tuple[int, Any]:
        contacts = (body or {}).get("contacts")
        if not isinstance(contacts, list) or not 1 <= len(contacts) <= 30000:
            return errors(400, "contacts: 1 to 30,000", "contacts")
        if any(i not in self.lists for i in body.get("list_ids") or []):
            return errors(400, "list_ids: unknown list", "list_ids")
        for n, contact in enumerate(contacts):
            if "@" not in str(contact.get("email", "")) or (
                    str(contact["email"]).lower() in self.invalid_emails):
                return errors(400, "email is required", f"contacts[{n}].email")
            for key, value in (contact.get("custom_fields") or {}).items():
                field = self.fields.get(key)
                if field is None:
                    return errors(400, f"custom field {key} does not exist (use ids)",
                                  f"contacts[{n}].custom_fields")
                if field["field_type"] == "Number" and (
                        isinstance(value, bool) or not isinstance(value, int | float)):
                    return errors(400, f"{key} must be a number", f"contacts[{n}]")
                if field["field_type"] == "Text" and not isinstance(value, str):
                    return errors(400, f"{key} must be text", f"contacts[{n}]")
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = {"body": body, "checks": 0, "status": "pending"}
        return 202, {"job_id": job_id}

    def _job(self, job_id: str) -> tuple[int, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            return errors(404, "job not found")
        job["checks"] += 1
        if job["status"] == "pending" and job["checks"] >= 2:
            emails = {str(c.get("email", "")).lower() for c in job["body"]["contacts"]}
            if emails & self.job_error_emails:
                job["status"] = "errored"
            else:
                self._apply(job["body"])
                job["status"] = "completed"
        return 200, {"id": job_id, "status": job["status"], "job_type": "upsert"}

    def _apply(self, body: dict[str, Any]) -> None:
        for item in body["contacts"]:
            email = item["email"]
            stored = self.contacts.setdefault(email.lower(), {
                "id": str(uuid.uuid4()), "email": email, "custom_fields": {}, "list_ids": set()})
            merged = {**stored["custom_fields"], **(item.get("custom_fields") or {})}
            if merged != stored["custom_fields"]:
                stored["custom_fields"] = merged
                self.field_changes[email] += 1
            for list_id in body.get("list_ids") or []:
                if list_id not in stored["list_ids"]:
                    stored["list_ids"].add(list_id)
                    self.list_events.append((email, list_id, "added"))

    def _search(self, body: Any) -> tuple[int, Any]:
        emails = (body or {}).get("emails") or []
        found = {e: {"contact": {"id": c["id"], "email": c["email"]}} for e in emails
                 if (c := self.contact(e))}
        return (200, {"result": found}) if found else errors(404, "no contacts found")

    def _leave(self, list_id: str, ids: str | None) -> tuple[int, Any]:
        if list_id not in self.lists or not ids:
            return errors(404, "list not found or no contact_ids")
        wanted = set(ids.split(","))
        for contact in self.contacts.values():
            if contact["id"] in wanted and list_id in contact["list_ids"]:
                contact["list_ids"].discard(list_id)
                self.list_events.append((contact["email"], list_id, "removed"))
        return 202, {"job_id": str(uuid.uuid4())}

    def _suppress(self, group: int, method: str, body: Any,
                  email: str | None) -> tuple[int, Any]:
        if method == "POST" and email is None:
            emails = (body or {}).get("recipient_emails") or []
            self.groups[group].update(e.lower() for e in emails)
            return 201, {"recipient_emails": emails}
        if method == "DELETE" and email is not None:
            self.groups[group].discard(unquote(email).lower())
            return 204, ""
        return errors(405, "method not allowed")
