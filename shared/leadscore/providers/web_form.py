"""Plain HTML forms and scripts: urlencoded, multipart or JSON bodies.

The form kind comes from a `form` field or `?form=`. Honeypot fields must stay empty;
captcha tokens and our own control fields never reach the profile.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.formparser import parse_form_data

from leadscore.domain.field_map import fold, map_fields
from leadscore.errors import BadRequest, UnsupportedMediaType, ValidationFailed, named_mimetype
from leadscore.providers.json_body import parse_json

CONTROL = {"form", "redirect", "_redirect", "cf_turnstile_response", "g_recaptcha_response",
           "h_captcha_response", "captcha"}
CAPTCHA_FIELDS = ("cf-turnstile-response", "g-recaptcha-response", "captcha")
FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


@dataclass
class Submission:
    email: str
    form_kind: str
    profile: dict[str, Any]
    honeypot_hit: bool
    captcha_token: str | None
    redirect: str | None
    fields: dict[str, str] = field(default_factory=dict)


def read_fields(raw: bytes, mimetype: str, content_type: str) -> dict[str, str]:
    """The submitted fields as strings, from any of the three encodings."""
    if mimetype == "application/json":
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise BadRequest("a JSON form body must be an object of field names to values")
        return {str(k): "" if v is None else str(v) for k, v in data.items()
                if not isinstance(v, dict | list)}
    if mimetype in FORM_TYPES:
        environ = {"wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw)),
                   "CONTENT_TYPE": content_type, "REQUEST_METHOD": "POST"}
        try:
            _, form, _ = parse_form_data(environ, silent=False)
            return {k: form.get(k, "") for k in form}
        except (ValueError, HTTPException) as exc:  # UnicodeDecodeError is a ValueError
            raise BadRequest(f"body is not a valid {mimetype} form: "
                             f"{type(exc).__name__}") from None
    raise UnsupportedMediaType(
        "send application/x-www-form-urlencoded, multipart/form-data or application/json, "
        f"not {named_mimetype(mimetype) if mimetype else 'no content type'}")


def interpret(fields: dict[str, str], query_form: str | None, mapping: dict[str, str],
              honeypots: list[str]) -> Submission:
    folded = {fold(k): v.strip() for k, v in fields.items()}
    hit = any(folded.get(fold(name)) for name in honeypots)
    captcha = next((fields[n] for n in CAPTCHA_FIELDS if fields.get(n)), None)
    kind = fold(folded.get("form") or query_form or "")
    hidden = CONTROL | {fold(h) for h in honeypots}
    profile = map_fields({k: v for k, v in fields.items() if fold(k) not in hidden}, mapping)
    email = str(profile.pop("email", "") or "")
    if not hit:
        problems = []
        if not email:
            problems.append({"field": "email", "problem": "required"})
        if not kind:
            problems.append({"field": "form", "problem": "required (a field or ?form=)"})
        if problems:
            raise ValidationFailed("the submission is missing required fields",
                                   details=problems)
    return Submission(email=email, form_kind=kind, profile=profile, honeypot_hit=hit,
                      captcha_token=captcha,
                      redirect=fields.get("_redirect") or fields.get("redirect"), fields=fields)
