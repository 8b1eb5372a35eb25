"""The events' address check remembers what email-validator found about each domain: the
same address, the same normalised spelling and the same error as checking from scratch."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pydantic import ValidationError

from leadscore.domain import events
from leadscore.domain.events import EVENT_ADAPTER

ADDRESSES = [
    "ana@acme.example", "bob@acme.example", "ANA@Acme.Example", "ana@sub.acme.example",
    "josé@acme.example", "jürgen@bücher.example", "x@xn--bcher-kva.example", "a.b+c@acme.example",
    "postmaster@acme.example", "ana@localhost", "ana@acme.test", "ana@-acme.example",
    "ana@acme..example", "ana@acme", "ana@" + "a" * 64 + ".example", "@acme.example",
    "ana@acme.example.", "ana@ab--cd.example", "ana@123.example", "ana@acme.123",
]


def checked(address: str) -> tuple[str, Any]:
    try:
        event = EVENT_ADAPTER.validate_python({
            "type": "email_delivered", "email": address, "source": "test",
            "idempotency_key": "k", "occurred_at": "2026-11-22T10:00:00Z"})
    except ValidationError as exc:
        return "refused", [e["msg"] for e in exc.errors()]
    return "accepted", event.email


def domain_check() -> Any:
    return vars(sys.modules["email_validator.validate_email"])["validate_email_domain_name"]


def test_a_remembered_domain_gives_what_checking_from_scratch_gives(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN every address checked once, so each valid domain is remembered
    first = [checked(a) for a in ADDRESSES]
    remembered = domain_check()
    assert remembered.cache_info().currsize > 0  # the memo is in place
    # WHEN the addresses are checked again with variants at the same domains, and then
    # from scratch with email-validator's own unremembered domain check
    again = [checked(a) for a in ADDRESSES]
    variants = [checked("other." + a) for a in ADDRESSES]
    assert remembered.cache_info().hits > 0
    monkeypatch.setitem(vars(sys.modules["email_validator.validate_email"]),
                        "validate_email_domain_name", remembered.__wrapped__)
    events.checked_email.cache_clear()  # addresses, not only domains, checked afresh
    scratch = [checked(a) for a in ADDRESSES]
    scratch_variants = [checked("other." + a) for a in ADDRESSES]
    events.checked_email.cache_clear()
    # THEN every answer is the same, accepted spelling or error message alike
    assert first == again == scratch
    assert variants == scratch_variants
    assert ("accepted", "jürgen@bücher.example") in first
    assert any(verdict == "refused" for verdict, _ in first)


def test_a_refused_domain_is_not_remembered() -> None:
    # GIVEN the check in place
    checked("ana@acme.example")
    remembered = domain_check()
    before = remembered.cache_info().currsize
    # WHEN an address at a reserved name is refused twice
    assert checked("ana@never.localhost")[0] == "refused"
    assert checked("bob@never.localhost")[0] == "refused"
    # THEN nothing was remembered for it (errors are checked again each time), and the
    # memo is bounded
    assert remembered.cache_info().currsize == before
    assert remembered.cache_info().maxsize == 4096
