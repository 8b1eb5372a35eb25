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
