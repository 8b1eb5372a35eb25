"""A fake of HubSpot's CRM v3 properties and contacts batch upsert, from HubSpot's docs.

Enforced: `Authorization: Bearer <token>` (401 otherwise); property groups and contact
properties created once (409 CONFLICT on a second create); a property's type and fieldType
must agree and an enumeration needs options; batch upsert takes at most 100 inputs, each
with `idProperty: email` and an email `id`, and only existing properties with values of
their type (number: numeric; enumeration: one of its options; datetime: ISO 8601 or epoch
milliseconds), else the whole batch is refused (400 VALIDATION_ERROR, nothing stored).
Emails in `refuse_emails` come back as per-record errors in a 207; one of `invalid_emails`
refuses its whole batch (400 VALIDATION_ERROR naming INVALID_EMAIL, as HubSpot validates
every input before storing any); one of `conflict_emails` refuses its whole batch with a
409 CONFLICT. GDPR delete (POST /crm/v3/objects/contacts/gdpr-delete,
`objectId` required, `idProperty` optional: `email` or the default, the record id) answers
204 with no body and deletes the contact for good; an address with no contact answers 204
too and goes on the blocklist (as HubSpot documents), an unknown record id is 404, any other
`idProperty` or a missing `objectId` is 400 VALIDATION_ERROR; a path HubSpot has no route
for (a wrong base URL) is 404 OBJECT_NOT_FOUND, never a 204. Forced answers
(`rate_limited()`, 500...) are queued with `fail_next`; `store_then_fail` upserts are
stored and then answered 500 (an answer lost after HubSpot stored the batch). Batch read
takes record ids or, with `idProperty: email`, addresses. It records every batch it received
and how many times each email was stored. Clearing `upserts_open` holds upserts until it is
set again (a HubSpot that answers slowly). Merged contacts and the CRM search (its own limits
enforced): `hubspot_search.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from typing import Any

from werkzeug.wrappers import Request, Response

from fakes.hubspot_search import SearchMixin
from fakes.server import FakeApi

TYPES = {"string": {"text", "textarea", "phonenumber", "html", "file"},
         "number": {"number"}, "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
         "datetime": {"date"}, "date": {"date"}, "bool": {"booleancheckbox"}}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$")
RATE_HEADERS = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "0",
                "X-HubSpot-RateLimit-Secondly": "10",
                "X-HubSpot-RateLimit-Secondly-Remaining": "0"}


def error(status: int, category: str, message: str, **extra: Any) -> tuple[int, Any]:
    return status, {"status": "error", "category": category, "message": message,
                    "correlationId": "00000000-fake", **extra}


def _record_id(email: str) -> str:
    """HubSpot's record id of a contact (hs_object_id), stable for one address."""
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:12], 16) % 10**9)


class HubSpotFake(SearchMixin, FakeApi):
    def __init__(self, token: str) -> None:
        super().__init__()
        self._init_search()
        self.token = token
        self.groups: set[str] = {"contactinformation"}
        self.properties: dict[str, dict[str, Any]] = {
            name: {"name": name, "type": "string", "fieldType": "text"}
            for name in ("email", "firstname", "lastname", "company", "jobtitle")}
        self.contacts: dict[str, dict[str, str]] = {}
        self.batches: list[list[str]] = []  # emails of every upsert batch received
        self.stored = Counter[str]()  # email -> times stored
        self.refuse_emails: set[str] = set()
        self.invalid_emails: set[str] = set()
        self.conflict_emails: set[str] = set()  # a batch holding one is refused whole: 409
        self.deal_contacts: dict[str, list[str]] = {}  # deal id -> contact ids
        self.contact_emails: dict[str, str] = {}  # contact id -> email
        self.gdpr_deleted: list[str] = []  # emails of the contacts GDPR-deleted, in order
        self.blocklist: set[str] = set()  # addresses GDPR-deleted while HubSpot had no contact
        self.upserts_open = threading.Event()  # clear it to hold upserts (a slow HubSpot)
        self.upserts_open.set()
        self.upserts_arrived = 0  # upserts received, counted before any hold
        self.store_then_fail = 0  # upserts still to store and then answer 500 (lost answer)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").endswith("/batch/upsert"):
            with self.lock:
                self.upserts_arrived += 1
            self.upserts_open.wait(30)
        return super().__call__(environ, start_response)

    def rate_limited(self, retry_after: int | None = None, times: int = 1) -> None:
        headers = dict(RATE_HEADERS)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        _, body = error(429, "RATE_LIMITS", "You have reached your secondly limit.",
                        errorType="RATE_LIMIT", policyName="SECONDLY")
        self.fail_next(429, body, headers, times)

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self.answer(*error(401, "INVALID_AUTHENTICATION",
                                      "Authentication credentials not found."))
        found = re.fullmatch(r"/crm/v4/objects/deals/(\d+)/associations/contacts", request.path)
        if request.method == "GET" and found:
            return self.answer(*self._associations(found.group(1)))
        try:
            body = json.loads(request.get_data())
        except ValueError:
            return self.answer(*error(400, "VALIDATION_ERROR", "Invalid input JSON"))
        routes = {"/crm/v3/properties/contacts/groups": self._group,
                  "/crm/v3/properties/contacts": self._property,
                  "/crm/v3/objects/contacts/batch/upsert": self._upsert,
                  "/crm/v3/objects/contacts/batch/read": self._read,
                  "/crm/v3/objects/contacts/gdpr-delete": self._gdpr_delete,
                  "/crm/v3/objects/contacts/search": self._search}
        route = routes.get(request.path)
        if request.method != "POST" or route is None:
            return self.answer(*error(404, "OBJECT_NOT_FOUND", "not found"))
        return self.answer(*route(body))

    def _associations(self, deal_id: str) -> tuple[int, Any]:
        """GET /crm/v4/objects/deals/{id}/associations/contacts: 404 for an unknown deal."""
        if deal_id not in self.deal_contacts:
            return error(404, "OBJECT_NOT_FOUND", f"deal {deal_id} not found")
        return 200, {"results": [
            {"toObjectId": int(c), "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]}
            for c in self.deal_contacts[deal_id]]}

    def _read(self, body: dict[str, Any]) -> tuple[int, Any]:
        """POST /crm/v3/objects/contacts/batch/read: at most 100 inputs, by record id or, with
        `idProperty: email`, by address; ids with no contact are one OBJECT_NOT_FOUND error
        naming them in a 207 (results may be empty), as HubSpot answers."""
        inputs, id_property = body.get("inputs"), body.get("idProperty")
        if not isinstance(inputs, list) or not inputs or len(inputs) > 100:
            return error(400, "VALIDATION_ERROR", "between 1 and 100 inputs")
        if id_property not in (None, "email", "hs_object_id"):
            return error(400, "VALIDATION_ERROR",
                         f"Property {id_property!r} is not a unique identifier")
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id"))
            if id_property == "email":
                email = key.lower()
                if email not in self.contacts and self.reads_find_secondary:
                    email = self.holder_of(email) or email
                found = email in self.contacts
                cid = _record_id(email)
            else:
                cid, found = key, key in self.contact_emails
                email = self.contact_emails.get(key, "")
            if found:
                results.append({"id": cid, "properties": {"email": email, "hs_object_id": cid},
                                "archived": False})
            else:
                missing.append(key)
        errors = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                   "message": "Could not get some CONTACT objects, they may be deleted or not "
                              "exist. Check that ids are valid.",
                   "context": {"ids": missing}}] if missing else []
        return (207 if errors else 200), {"status": "COMPLETE", "results": results,
                                          "errors": errors, "numErrors": len(errors)}

    def _gdpr_delete(self, body: dict[str, Any]) -> tuple[int, Any]:
        """POST /crm/v3/objects/contacts/gdpr-delete: 204 and no body when done."""
        object_id, id_property = body.get("objectId"), body.get("idProperty")
        if not isinstance(object_id, str) or not object_id:
            return error(400, "VALIDATION_ERROR", "objectId is required")
        if id_property not in (None, "email", "hs_object_id"):
            return error(400, "VALIDATION_ERROR",
                         f"Property {id_property!r} is not a unique identifier")
        if id_property == "email":
            email = object_id.lower()
            if email not in self.contacts:
                self.blocklist.add(email)
                return 204, ""
        else:
            email = next((e for e in self.contacts if _record_id(e) == object_id), "")
            if not email:
                return error(404, "OBJECT_NOT_FOUND", f"contact {object_id} not found")
        del self.contacts[email]
        self.gdpr_deleted.append(email)
        return 204, ""

    def _group(self, body: dict[str, Any]) -> tuple[int, Any]:
        name = body.get("name")
        if not name or not body.get("label"):
            return error(400, "VALIDATION_ERROR", "name and label are required")
        if name in self.groups:
            return error(409, "CONFLICT", f"A property group named '{name}' already exists.")
        self.groups.add(name)
        return 201, body

    def _property(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, kind, field = body.get("name"), body.get("type"), body.get("fieldType")
        if not name or not body.get("label") or kind not in TYPES or field not in TYPES[kind]:
            return error(400, "VALIDATION_ERROR", f"bad property definition {name}")
        if body.get("groupName") not in self.groups:
            return error(400, "VALIDATION_ERROR", "unknown groupName")
        if kind == "enumeration" and not body.get("options"):
            return error(400, "VALIDATION_ERROR", "enumeration needs options")
        if name in self.properties:
            return error(409, "CONFLICT", f"Property named '{name}' already exists.")
        self.properties[name] = body
        return 201, body

    def _invalid(self, name: str, value: Any) -> str | None:
        spec = self.properties.get(name)
        if spec is None:
            return f"Property \"{name}\" does not exist"
        text = str(value)
        if spec["type"] == "number":
            try:
                float(text)
            except ValueError:
                return f"{text!r} is not a valid number for {name}"
        if spec["type"] == "enumeration" and text not in {
                o["value"] for o in spec.get("options", [])}:
            return f"{text!r} was not one of the allowed options for {name}"
        if spec["type"] == "datetime" and not (ISO.match(text) or text.isdigit()):
            return f"{text!r} is not a valid datetime for {name}"
        return None

    def _upsert(self, body: dict[str, Any]) -> tuple[int, Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            return error(400, "VALIDATION_ERROR", "inputs are required")
        if len(inputs) > 100:
            return error(400, "VALIDATION_ERROR", "Batch input limit of 100 exceeded")
        problems = []
        for item in inputs:
            if item.get("idProperty") != "email" or "@" not in str(item.get("id", "")):
                problems.append("each input needs idProperty email and an email id")
            elif str(item["id"]).lower() in self.invalid_emails:
                problems.append(json.dumps({"isValid": False, "error": "INVALID_EMAIL",
                                            "message": f"Email address {item['id']} is invalid",
                                            "name": "email"}))
            problems += [p for n, v in (item.get("properties") or {}).items()
                         if (p := self._invalid(n, v))]
        self.batches.append([str(i.get("id", "")).lower() for i in inputs])
        if any(str(i.get("id", "")).lower() in self.conflict_emails for i in inputs):
            return error(409, "CONFLICT", "A contact with this email already exists "
                         "(unique property conflict)")
        if problems:
            return error(400, "VALIDATION_ERROR", "Property values were not valid: "
                         + "; ".join(problems[:5]))
        results, errors = [], []
        for item in inputs:
            email = str(item["id"]).lower()
            if email in self.refuse_emails:  # HubSpot's documented per-input error
                errors.append({
                    "status": "error", "category": "VALIDATION_ERROR",
                    "subCategory": "CrmObjectValidationError.INVALID_PROPERTY_VALUE",
                    "message": f"Property values were not valid for contact {email}",
                    "context": {"ids": [email]}, "links": {},
                    "errors": [{"message": f"{email} is not allowed for this portal",
                                "code": "INVALID_EMAIL", "in": "email",
                                "subCategory": "INVALID_EMAIL", "context": {}}]})
                continue
            self.contacts.setdefault(email, {"email": email}).update(item["properties"])
            self.stored[email] += 1
            results.append({"id": _record_id(email), "new": False,
                            "properties": self.contacts[email]})
        if self.store_then_fail > 0:  # stored, but the answer is lost: the caller sees a 500
            self.store_then_fail -= 1
            return error(500, "INTERNAL_ERROR", "internal error")
        status = 207 if errors else 200
        stamp = "2026-11-22T09:00:00.000Z"
        return status, {"status": "COMPLETE", "results": results, "errors": errors,
                        "numErrors": len(errors), "links": {}, "requestedAt": stamp,
                        "startedAt": stamp, "completedAt": stamp}
