"""The form submission use case: one FormSubmitted event, counted once per submission."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta
from typing import Any

from leadscore.domain.events import FormSubmitted
from leadscore.domain.identity import lead_id_for, ledger_key, normalise_email
from leadscore.domain.rules import Rules
from leadscore.providers.form_events import form_event
from leadscore.service.ingest import IngestResult, ingest
from leadscore.store.port import LeadStore

# plain forms build their event the way form services do (one construction, one 422)
build_event = form_event


def submission_key(email: str, form_kind: str, profile: dict[str, Any], now: datetime,
                   window: timedelta) -> tuple[str, str]:
    """Keys for a double-clicked submit: the same content in this window and the last one."""
    content = json.dumps([normalise_email(email), form_kind, sorted(profile.items())],
                         default=str)
    digest = hashlib.sha256(content.encode()).hexdigest()[:24]
    bucket = math.floor(now.timestamp() / window.total_seconds())
    return f"form:{digest}:{bucket}", f"form:{digest}:{bucket - 1}"


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
