"""Who a tracked message is about: visitor keys and, when known, an address (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from leadscore.domain.events import PLACEHOLDER_EMAIL, Event

ANONYMOUS = PLACEHOLDER_EMAIL  # an anonymous event's address until it joins a lead


@dataclass(frozen=True)
class Tracked:
    keys: tuple[str, ...]  # visitor keys, the user id's first
    email: str | None
    event: Event | None  # its address is ANONYMOUS while `email` is None
    # sent with a server key (a secret): may re-point a visitor key linked to another lead.
    # A client key is public, so its messages (and forms) only link keys nobody else has.
    trusted: bool = True
    # may start a lead for `email` (else only a lead that exists; see Policy.captcha_required)
    creates: bool = True
    # keys[0] is the message's own userId: a person, while its anonymousId is a device (that
    # people may share). An alias call (which says two ids are one) leaves it False.
    person: bool = False
    # `event` refunds its whole order, whose amount the store has (mapping.full_refund)
    full_refund: bool = False


def visitor_key(kind: str, raw: str) -> str:
    """A visitor record's key: never the raw id (user ids can be addresses)."""
    return "v" + hashlib.sha256(f"{kind}\x1f{raw}".encode()).hexdigest()[:40]
