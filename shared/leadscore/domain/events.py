"""Canonical events: what happened, whatever system reported it.

Every event carries the address it concerns, the system that reported it (`source`), the
moment it happened (`occurred_at`, timezone-aware) and an `idempotency_key` that is the same
on every redelivery of that event. Scores depend on `occurred_at`, never on arrival time,
so late, duplicated or reordered deliveries give the same lead.
"""

import re
from datetime import UTC, datetime
from functools import lru_cache
from importlib import import_module
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
)
from pydantic.networks import validate_email

from leadscore.domain.identity import normalise_email
from leadscore.domain.limits import ProfileValue as ProfileValue  # its home; named here too
from leadscore.domain.limits import check_profile

SLUG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


# The address an anonymous visitor's event carries until it joins a lead (domain/visitors.py):
# ours and valid by construction, so it is not checked again (the check loads email-validator,
# 15-25 ms of a track function's first request when that is an anonymous page view).
PLACEHOLDER_EMAIL = "anonymous@visitor.example"


@lru_cache(maxsize=8192)
def checked_email(value: str) -> str:
    """pydantic's `EmailStr` check, remembered per address: a provider batch names each lead
    many times, and the check (email-validator) costs more than the rest of the event."""
    if value == PLACEHOLDER_EMAIL:
        return value
    if not _domains_remembered:  # after the placeholder: it must not load email-validator
        _remember_domains()
    return validate_email(value)[1]


_domains_remembered = False


def _remember_domains() -> None:
    """Nine tenths of email-validator's check of a new address is its domain's (Unicode
    tables character by character, ~17 us for `acme.example`), and a new address is mostly
    at a domain seen before. `validate_email_domain_name` is a pure function of the domain
    and two flags (and of `email_validator.SPECIAL_USE_DOMAIN_NAMES`, which leadscore never
    changes) that returns a dict its caller only reads, or raises: remember its results,
    keyed by all its arguments, bounded (errors are not remembered: an invalid domain is
    checked again).
    Installed at the first check, so importing the events never imports email-validator."""
    global _domains_remembered
    try:  # (a release that moves or renames these costs speed, never an event)
        names = vars(import_module("email_validator.validate_email"))  # where it is called
    except ImportError:
        names = {}
    check = names.get("validate_email_domain_name")
    if callable(check) and not hasattr(check, "cache_info"):  # once per process
        names["validate_email_domain_name"] = lru_cache(maxsize=4096)(check)
    _domains_remembered = True


# `EmailStr`, with the same errors and JSON schema, checked once per distinct address
EmailAddress = Annotated[str, AfterValidator(checked_email),
                         WithJsonSchema({"type": "string", "format": "email"})]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    email: EmailAddress
    source: str = Field(min_length=1, max_length=64)
    idempotency_key: str = Field(min_length=1, max_length=256)
    occurred_at: AwareDatetime

    @field_validator("email", mode="before")
    @classmethod
    def _normalise(cls, value: object) -> object:
        return normalise_email(value) if isinstance(value, str) else value

    @field_validator("occurred_at")
    @classmethod
    def _in_range(cls, value: datetime) -> datetime:
        return within_scored_years(value)


# The years scores are exact for (domain/decay.py). A time outside them is refused where it
# is read, not at the store: "0001-01-01T00:00:00+14:00" is a valid aware time whose UTC is
# before year 1, and converting it raised OverflowError deep in a write (a 500).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def within_scored_years(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError("must be a time from 1970 to 2200 (UTC)")
    return value


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("must be a lower-case slug: letters, digits, '_' or '-', at most 64")
    return value


class FormSubmitted(_Event):
    type: Literal["form_submitted"] = "form_submitted"
    form_kind: str
    profile: dict[str, ProfileValue] = Field(default_factory=dict)
    url: str | None = Field(default=None, max_length=2048)  # the page the form was on
    campaign: str | None = Field(default=None, max_length=256)
    # the email tool itself reports this signup (Mailchimp's `subscribe`): the address
    # takes mail again, as after a resubscribe. Never set from a web form's fields
    opt_in: bool = False

    _kind = field_validator("form_kind")(_slug)
    _bounded = field_validator("profile")(check_profile)  # limits.py: 422 naming the field


class EmailDelivered(_Event):
    type: Literal["email_delivered"] = "email_delivered"


class EmailOpened(_Event):
    type: Literal["email_opened"] = "email_opened"
    machine_open: bool = False  # e.g. Apple Mail Privacy Protection prefetch
    campaign: str | None = Field(default=None, max_length=256)


class EmailClicked(_Event):
    type: Literal["email_clicked"] = "email_clicked"
    url: str | None = Field(default=None, max_length=2048)
    campaign: str | None = Field(default=None, max_length=256)


class EmailBounced(_Event):
    type: Literal["email_bounced"] = "email_bounced"
    hard: bool


class EmailComplained(_Event):
    type: Literal["email_complained"] = "email_complained"


class EmailUnsubscribed(_Event):
    type: Literal["email_unsubscribed"] = "email_unsubscribed"


class EmailResubscribed(_Event):
    type: Literal["email_resubscribed"] = "email_resubscribed"


OtherId = Annotated[str, Field(min_length=1, max_length=128)]


class PurchaseMade(_Event):
    type: Literal["purchase_made"] = "purchase_made"
    order_id: str = Field(min_length=1, max_length=128)
    amount_minor: int = Field(ge=0, le=10**13)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    # other ids the platform gives this payment (Stripe: payment intent, charge, customer),
    # each -> the id it stands for; indexed with the lead so refunds naming them find it
    aliases: dict[OtherId, OtherId] = Field(default_factory=dict, max_length=16)


class PurchaseRefunded(_Event):
    type: Literal["purchase_refunded"] = "purchase_refunded"
    order_id: str = Field(min_length=1, max_length=128)
    refund_id: str = Field(min_length=1, max_length=128)
    amount_minor: int = Field(ge=0, le=10**13)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class CustomActivity(_Event):
    """Anything else: website visits, webinar attendance, CRM changes, sent by `/ingest`."""

    type: Literal["activity"] = "activity"
    activity: str
    profile: dict[str, ProfileValue] = Field(default_factory=dict)
    url: str | None = Field(default=None, max_length=2048)  # a page view's page
    campaign: str | None = Field(default=None, max_length=256)

    _kind = field_validator("activity")(_slug)
    _bounded = field_validator("profile")(check_profile)


OutcomeKind = Literal["opportunity_created", "deal_won", "deal_lost", "sales_accepted",
                      "sales_rejected"]


class OutcomeRecorded(_Event):
    """What sales or the CRM says happened to the lead. Outcomes are what the score is judged
    against: they add no points unless the rules name `outcome.<kind>`."""

    type: Literal["outcome"] = "outcome"
    outcome: OutcomeKind
    amount_minor: int | None = Field(default=None, ge=0, le=10**13)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    reason: str | None = Field(default=None, max_length=500)
    deal_id: str | None = Field(default=None, max_length=128)


Event = Annotated[
    FormSubmitted
    | EmailDelivered
    | EmailOpened
    | EmailClicked
    | EmailBounced
    | EmailComplained
    | EmailUnsubscribed
    | EmailResubscribed
    | PurchaseMade
    | PurchaseRefunded
    | CustomActivity
    | OutcomeRecorded,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_LIST_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])
