"""The one shape every provider has, and the values that pass between it and an entry point.

A provider is one module exposing one object (`PROVIDER`) of the `Provider` protocol. The
entry point reads the raw request into an `Inbound`, asks the provider to verify it against
the active secrets, then to parse it into a `ParseResult`; everything else (body limits,
writing, status codes) happens once, in `leadscore.webhook`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from leadscore.config import Settings
    from leadscore.domain.events import Event
    from leadscore.providers.purchase_report import PurchaseReport


@dataclass(frozen=True)
class Inbound:
    """One request as a provider sees it: raw bytes, lower-case header names, the query."""

    raw: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"


@dataclass(frozen=True)
class Reply:
    """An answer the provider gives at once, writing nothing (handshakes, pings)."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class EmailMove:
    """An address change (Mailchimp's `upemail`): the lead moves with its history."""

    old_email: str
    new_email: str
    occurred_at: datetime


# A signature is accepted while its timestamp is within the provider's tolerance of our
# clock, so a token first seen at the start of that window can be replayed until its end:
# twice the widest tolerance of the providers that claim tokens (Mailgun's TOLERANCE_S,
# 900 s; HubSpot's 5 minutes), plus an hour for our own instances' clocks to disagree
# (`service.ingest.MAX_CLOCK_SKEW`). tests/unit/test_token_retention.py holds it wide enough.
TOKEN_KEPT = timedelta(seconds=2 * 900) + timedelta(hours=1)


@dataclass(frozen=True)
class TokenClaim:
    """A one-time value from a signature (Mailgun's token): a second owner is a replay."""

    key: str
    owner: str
    kept: timedelta = TOKEN_KEPT  # how long the store remembers it, from its first claim


@dataclass
class ParseResult:
    """What a request said. At most one of these is the point; empty means "acknowledge"."""

    events: list[Event] = field(default_factory=list)
    purchases: list[PurchaseReport] = field(default_factory=list)
    reply: Reply | None = None
    move: EmailMove | None = None
    claims: list[TokenClaim] = field(default_factory=list)
    # the provider's own names of what was acknowledged and not scored (one per item, e.g.
    # "processed", "dropped", "invalid"): logged by the pipeline, never personal data
    ignored: list[str] = field(default_factory=list)


class Edges(Protocol):
    """The outside calls a provider may need; the container provides them (tests fake them).
    `settings` is there for providers whose signature covers a configured URL (HubSpot)."""

    settings: Settings

    def fetch_sns_certificate(self, url: str) -> bytes: ...

    def confirm_sns_subscription(self, topic_arn: str, token: str) -> str: ...

    def deal_contact_emails(self, deal_id: str) -> list[str]: ...


class Provider(Protocol):
    """One outside system behind one function and path (e.g. `email_webhook` + `/sendgrid`).

    `settings` names the Settings fields it needs to be configured; the first one holds its
    active secrets (comma-separated, so they rotate). `verify` raises `Unauthorized` (failing
    closed when no secret is set); `parse` raises `BadRequest` / `ValidationFailed`.
    """

    name: str
    function: str
    path: str
    settings: tuple[str, ...]
    methods: frozenset[str]
    json_body: bool
    # A tighter body limit than the function's, for a provider whose signature lies inside
    # the body (so a stranger's unsigned body is parsed before it can be refused), or None.
    max_body: int | None

    def handshake(self, request: Inbound) -> Reply | None:
        """An unsigned request answered before verification (WooCommerce's ping), or None."""
        ...

    def verify(self, request: Inbound, secrets: Sequence[str], now: datetime,
               edges: Edges) -> None: ...

    def parse(self, request: Inbound, settings: Settings, edges: Edges) -> ParseResult: ...


class WebhookProvider:
    """Defaults for the common case: POST, a JSON body, no handshake. Subclass and override."""

    name = ""
    function = ""
    path = ""
    settings: tuple[str, ...] = ()
    methods: frozenset[str] = frozenset({"POST"})
    json_body = True
    max_body: int | None = None

    def handshake(self, request: Inbound) -> Reply | None:
        return None

    def __repr__(self) -> str:
        return f"<provider {self.name} at {self.function}{self.path}>"
