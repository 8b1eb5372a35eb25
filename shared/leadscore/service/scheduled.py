"""The decay job as Pub/Sub delivers it: a daily tick from Cloud Scheduler, or one shard.

A tick processes up to `LEADSCORE_DECAY_INLINE_LIMIT` due leads itself; if more are due it
publishes one message per shard to `LEADSCORE_DECAY_SHARD_TOPIC` and the same function
processes each shard (a fixed set of the 64 lead buckets), all with the tick's `now`. A shard
that runs out of time publishes itself again for the rest.
"""

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from leadscore import logs
from leadscore.domain.identity import SHARDS
from leadscore.domain.rules import Rules
from leadscore.domain.state import LeadState
from leadscore.errors import BadRequest
from leadscore.service.decay import DecaySummary, run_decay
from leadscore.store.port import DashboardStats, LeadStore, VisitorStore

SHARD_MESSAGES = 8
Publisher = Callable[[str, dict[str, Any]], None]


class DecayMessage(BaseModel):
    """What the decay topic carries; the scheduler's tick is `{}`."""

    now: AwareDatetime | None = None
    buckets: list[int] | None = Field(default=None, min_length=1, max_length=SHARDS)


def parse_message(data: Any, fallback_time: datetime) -> tuple[datetime, list[int] | None]:
    """Read a Pub/Sub push payload; BadRequest for anything that can never succeed."""
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise BadRequest("not a Pub/Sub message: no 'message' object")
    encoded = data["message"].get("data") or ""
    try:
        text = base64.b64decode(encoded, validate=True).decode() if encoded else "{}"
        message = DecayMessage.model_validate(json.loads(text or "{}"))
    except ValidationError as exc:  # named by field, never repeating the value sent
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)[:5])
        raise BadRequest(f"decay message is not valid: {problems}") from None
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise BadRequest(f"decay message is not valid: {_unreadable(exc)}") from None
    if message.buckets and any(not 0 <= b < SHARDS for b in message.buckets):
        raise BadRequest(f"buckets must be between 0 and {SHARDS - 1}")
    return message.now or fallback_time, message.buckets


def _unreadable(error: Exception) -> str:
    """What was wrong with the message's data, in words of ours (a decoder's text can quote
    what it could not read)."""
    if isinstance(error, binascii.Error):
        return "data is not base64"
    if isinstance(error, UnicodeDecodeError):
        return "data is not UTF-8"
    if isinstance(error, RecursionError):
        return "data is nested too deeply"
    return "data is not JSON"


def purge_expired_visitors(store: LeadStore, now: datetime) -> int:
    """Anonymous visitors past their expiry go (Firestore's TTL policy does the same in
    production; on SQLite this daily purge is what removes them)."""
    if not isinstance(store, VisitorStore):
        return 0
    purged = store.purge_visitors(now)
    if purged:
        logs.info("expired visitor records purged", purged=purged)
    return purged


def purge_expired_erasures(store: LeadStore, now: datetime) -> int:
    """Tombstones, moved records and erased orders' markers `TOMBSTONE_KEPT` old go
    (Firestore's TTL policies do the same in production; on SQLite and memory this daily
    purge is what removes them)."""
    purged = store.purge_expired_erasures(now)
    if purged:
        logs.info("expired erasure records purged", purged=purged)
    return purged


def purge_used_tokens(store: LeadStore, now: datetime) -> int:
    """Signature tokens kept against replays go once no signature carrying them can be
    accepted (`providers/base.py` TOKEN_KEPT; Firestore's TTL policy does the same)."""
    purged = store.purge_used_tokens(now)
    if purged:
        logs.info("used signature tokens purged", purged=purged)
    return purged


def snapshot_for_dashboard(store: LeadStore, now: datetime) -> None:
    """Today's stage and grade counts for the dashboard's "over time" chart (a few count
    queries, once a day)."""
    if isinstance(store, DashboardStats):
        from leadscore.dashboard.snapshot import take

        take(store, now, store.count_leads())


def handle(store: LeadStore, rules: Rules, now: datetime, buckets: list[int] | None, *,
           inline_limit: int, deadline_s: float, shard_topic: str | None,
           publish: Publisher | None,
           on_flagged: Callable[[LeadState], None] | None) -> DecaySummary:
    if buckets is None:  # the daily tick
        purge_expired_visitors(store, now)
        purge_expired_erasures(store, now)
        purge_used_tokens(store, now)
        summary = run_decay(store, rules, now, limit=inline_limit, deadline_s=deadline_s,
                            on_flagged=on_flagged)
        snapshot_for_dashboard(store, now)
        if summary.remaining and shard_topic and publish:
            for i in range(SHARD_MESSAGES):
                publish(shard_topic, {"now": now.isoformat(),
                                      "buckets": list(range(i, SHARDS, SHARD_MESSAGES))})
            summary.shards_published = SHARD_MESSAGES
        return summary
    summary = run_decay(store, rules, now, buckets=buckets, deadline_s=deadline_s,
                        on_flagged=on_flagged)
    if summary.remaining and shard_topic and publish:
        publish(shard_topic, {"now": now.isoformat(), "buckets": buckets})
        summary.shards_published = 1
    return summary
