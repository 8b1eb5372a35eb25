"""Stable, non-reversible identifiers derived from email addresses and event keys.

A lead id is a keyed hash (HMAC-SHA256 under the deployment's `LEADSCORE_ID_KEY`) of the
address's canonical spelling, so an id in a log or URL cannot be reversed by hashing
guessed addresses (DESIGN.md rule 11), and every spelling of one address (case, Unicode
NFC/NFD/NFKC forms, a Unicode or punycode domain) is one lead.

The key is the one piece of configuration the pure domain needs; the composition root
sets it once (`use_id_key`) before anything computes an id. Without a key the public
`LOCAL_ID_KEY` is used: fine on a laptop, never in production (the container warns).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

LOCAL_ID_KEY = "leadscore-local-development-key-not-secret"
_id_key = LOCAL_ID_KEY.encode()


def use_id_key(key: str) -> None:
    """Set the deployment's id key (the container calls this; empty means the local key)."""
    global _id_key
    _id_key = (key or LOCAL_ID_KEY).encode()


def normalise_email(email: str) -> str:
    """Trim, compose (NFC) and lower-case: how an address is stored and shown."""
    return unicodedata.normalize("NFC", email.strip()).lower()


def _ascii_domain(domain: str) -> str:
    """The domain as lower-case IDNA ASCII (punycode); Unicode and xn-- spellings agree."""
    folded = unicodedata.normalize("NFKC", domain).lower().rstrip(".")
    try:
        return folded.encode("idna").decode("ascii").lower()
    except UnicodeError:  # not a valid IDNA name: the folded text is the best we have
        return folded


def canonical_email(email: str) -> str:
    """The one spelling an address's identity is computed from (never stored or logged)."""
    local, at, domain = normalise_email(email).rpartition("@")
    if not at:
        return unicodedata.normalize("NFKC", normalise_email(email))
    return f"{unicodedata.normalize('NFKC', local).lower()}@{_ascii_domain(domain)}"


def lead_id_for(email: str) -> str:
    """The lead's document id: a keyed hash, never the raw email (ids reach URLs and logs)."""
    digest = hmac.new(_id_key, canonical_email(email).encode("utf-8"), hashlib.sha256)
    return f"l_{digest.hexdigest()[:32]}"


LEAD_ID = re.compile(r"l_[0-9a-f]{32}")


def is_lead_id(text: str) -> bool:
    """Whether `text` is spelled as `lead_id_for` and `legacy_lead_id` spell ids: what a URL
    may name a lead by. Nothing else can name a stored lead, and some text is no Firestore
    document id at all (`__x__`, `..`, over 1,500 bytes): a caller checks before a read."""
    return LEAD_ID.fullmatch(text) is not None


def legacy_lead_id(email: str) -> str:
    """The unkeyed id of releases before keyed ids, so reads and erasure still find data
    stored under it (see the README's "Lead ids" note on migrating)."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
    return f"l_{digest[:32]}"


SHARDS = 64  # fixed buckets for fanning the scheduled job out; a shard is a set of buckets


def shard_of(lead_id: str) -> int:
    return int(hashlib.sha256(lead_id.encode()).hexdigest()[:8], 16) % SHARDS


def ledger_key(source: str, idempotency_key: str) -> str:
    """Document id of an event's ledger entry; the same event from a retry gets the same key."""
    raw = f"{source}\x1f{idempotency_key}".encode()
    return f"e_{hashlib.sha256(raw).hexdigest()[:40]}"


def keyed_hash(purpose: str, value: str) -> str:
    """A keyed hash (the id key) of a value that is not an address, for markers that must
    not be readable or guessable from the value (an erased lead's order ids)."""
    digest = hmac.new(_id_key, f"{purpose}\x1f{value}".encode(), hashlib.sha256)
    return digest.hexdigest()[:40]


def redact_email(email: str) -> str:
    """What logs may show of an address: its lead id, nothing readable."""
    return lead_id_for(email)
