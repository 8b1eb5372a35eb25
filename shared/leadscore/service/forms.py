"""The form submission use case: one FormSubmitted event, counted once per submission."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from leadscore.domain.events import FormSubmitted
from leadscore.domain.identity import lead_id_for, ledger_key, normalise_email
from leadscore.domain.rules import Rules
from leadscore.errors import ValidationFailed
from leadscore.service.ingest import IngestResult, ingest
from leadscore.store.port import LeadStore


def submission_key(email: str, form_kind: str, profile: dict[str, Any], now: datetime,
                   window: timedelta) -> tuple[str, str]:
    """Keys for a double-clicked submit: the same content in this window and the last one."""
    content = json.dumps([normalise_email(email), form_kind, sorted(profile.items())],
                         default=str)
    digest = hashlib.sha256(content.encode()).hexdigest()[:24]
    bucket = math.floor(now.timestamp() / window.total_seconds())
    return f"form:{digest}:{bucket}", f"form:{digest}:{bucket - 1}"


def build_event(source: str, key: str, email: str, form_kind: str, profile: dict[str, Any],
                at: datetime) -> FormSubmitted:
    try:
        return FormSubmitted(email=email, source=source, idempotency_key=key, occurred_at=at,
                             form_kind=form_kind, profile=profile)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]) or "(form)", "problem": e["msg"]}
                   for e in exc.errors(include_url=False, include_input=False)]
        raise ValidationFailed("the submission is not valid", details=details) from None


def submit(store: LeadStore, rules: Rules, event: FormSubmitted, now: datetime,
           also_seen_as: str | None = None, window: timedelta | None = None) -> IngestResult:
    """Apply the submission unless it repeats one of the previous window (`also_seen_as`).

    Identical content is keyed per fixed window; a repeat that straddles a window boundary
    is caught by looking up the previous window's key in the ledger: one keyed read,
    whatever the lead's history holds, so the cost (and timing) of a post does not depend
    on how much we know about the address. (A repeat counts once within one to two
    windows of the first post.)
    """
    if also_seen_as and window:
        previous = ledger_key(event.source, also_seen_as)
        if previous in store.read(lead_id_for(event.email), [previous]).known:
            return IngestResult(received=1, applied=0, duplicates=1, leads=1, commits=0,
                                stage_changes=[])
    return ingest(store, rules, [event], now)
