"""Signature tokens kept against replays go once no signature carrying them can be accepted
(`store.purge_used_tokens`, from the decay tick; Firestore's TTL policy in production), and
not before: on memory, SQLite and the Firestore emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import NOW

from leadscore.domain.rules import Rules
from leadscore.service.scheduled import handle

SECOND = timedelta(seconds=1)


def test_a_token_inside_its_window_is_still_a_replay_after_the_purge(store: Any) -> None:
    # GIVEN a token whose window is over, one still inside it, and one kept for good
    assert store.claim_token("mailgun:old", "event-a", NOW - SECOND)
    assert store.claim_token("mailgun:fresh", "event-b", NOW + SECOND)
    assert store.claim_token("mailgun:forever", "event-c")
    # WHEN the expired tokens are purged
    assert store.purge_used_tokens(NOW) == 1
    # THEN the fresh token is still refused to another owner (a replay), and still taken
    # by its own (a retry); the old one is gone: a new claim of it is a first one
    assert store.claim_token("mailgun:fresh", "event-x", NOW + timedelta(hours=1)) is False
    assert store.claim_token("mailgun:fresh", "event-b", NOW + timedelta(hours=1)) is True
    assert store.claim_token("mailgun:forever", "event-x") is False
    assert store.claim_token("mailgun:old", "event-x", NOW + timedelta(hours=1)) is True


def test_a_retry_does_not_extend_a_tokens_time(store: Any) -> None:
    # GIVEN a token claimed, then claimed again by the same delivery with a later expiry
    assert store.claim_token("mailgun:t", "event-a", NOW)
    assert store.claim_token("mailgun:t", "event-a", NOW + timedelta(days=1))
    # WHEN the purge runs after the first claim's expiry, THEN the token goes
    assert store.purge_used_tokens(NOW) == 1


def test_the_decay_tick_purges_expired_tokens(store: Any, rules: Rules) -> None:
    assert store.claim_token("hubspot-v3:old", "req-1", NOW - SECOND)
    assert store.claim_token("hubspot-v3:new", "req-2", NOW + SECOND)
    handle(store, rules, NOW, None, inline_limit=10, deadline_s=30.0, shard_topic=None,
           publish=None, on_flagged=None)
    assert store.claim_token("hubspot-v3:old", "req-3", NOW + SECOND) is True
    assert store.claim_token("hubspot-v3:new", "req-3", NOW + SECOND) is False
