"""Stable, non-reversible identifiers derived from email addresses and event keys."""

from __future__ import annotations

import hashlib


def normalise_email(email: str) -> str:
    """Trim and lower-case; the only normalisation every provider agrees on."""
    return email.strip().lower()


def lead_id_for(email: str) -> str:
    """The lead's document id: never the raw email (ids end up in URLs and logs)."""
    digest = hashlib.sha256(normalise_email(email).encode("utf-8")).hexdigest()
    return f"l_{digest[:32]}"


SHARDS = 64  # fixed buckets for fanning the scheduled job out; a shard is a set of buckets


def shard_of(lead_id: str) -> int:
    return int(hashlib.sha256(lead_id.encode()).hexdigest()[:8], 16) % SHARDS


def ledger_key(source: str, idempotency_key: str) -> str:
    """Document id of an event's ledger entry; the same event from a retry gets the same key."""
    raw = f"{source}\x1f{idempotency_key}".encode()
    return f"e_{hashlib.sha256(raw).hexdigest()[:40]}"


def redact_email(email: str) -> str:
    """What logs may show of an address: its lead id, nothing readable."""
    return lead_id_for(email)
