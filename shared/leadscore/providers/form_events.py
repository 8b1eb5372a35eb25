"""A form service's response as a canonical FormSubmitted event, or a 422 naming the field.

Plain web forms use it too (`service.forms.build_event` is this function), so every form
is validated and refused the same way; it lives here so providers never import the service
layer above them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from leadscore.domain.events import FormSubmitted
from leadscore.domain.field_map import fold, map_fields
from leadscore.errors import ValidationFailed


def form_event(source: str, key: str, email: str, form_kind: str, profile: dict[str, Any],
               at: datetime) -> FormSubmitted:
    try:
        return FormSubmitted(email=email, source=source, idempotency_key=key, occurred_at=at,
                             form_kind=form_kind, profile=profile)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]) or "(form)", "problem": e["msg"]}
                   for e in exc.errors(include_url=False, include_input=False)]
        raise ValidationFailed("the submission is not valid", details=details) from None


def answered_form(answers: dict[str, str], mapping: dict[str, str], form_id: str,
                  kinds: dict[str, str], default_kind: str, email: str,
                  missing: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """(email, form kind, profile) from a form service's named answers.

    The email is the one the service marked as such, else a mapped `email` answer; the kind
    is a hidden `form_kind` answer, else the form id's configured kind, else the default.
    `missing` is the 422 detail naming where the service would have put the email.
    """
    profile: dict[str, Any] = map_fields(answers, mapping)
    email = email or str(profile.pop("email", "") or "")
    profile.pop("email", None)
    kind = fold(str(profile.pop("form_kind", "") or kinds.get(form_id) or default_kind))
    if not email:
        raise ValidationFailed("the response has no email answer", details=[missing])
    return email, kind, profile
