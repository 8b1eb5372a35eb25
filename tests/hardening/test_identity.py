"""Lead ids are keyed hashes, and every spelling of an address is one lead (issue 21)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from builders import form
from conftest import NOW
from functional.conftest import client_for

from leadscore.container import Container
from leadscore.domain import identity
from leadscore.domain.identity import lead_id_for, legacy_lead_id
from leadscore.domain.state import LeadState
from leadscore.service.ingest import ingest
from leadscore.service.leads import find_lead

AUTH = {"Authorization": "Bearer current-token-123"}
SPELLINGS = ["ana@bücher.example", "ANA@BÜCHER.EXAMPLE", "ana@bu\u0308cher.example",
             "ana@xn--bcher-kva.example", " Ana@XN--BCHER-KVA.example "]


def test_an_id_cannot_be_reversed_by_hashing_a_guessed_address() -> None:
    # GIVEN a deployment key
    identity.use_id_key("a-long-random-deployment-secret")
    try:
        guessed = "l_" + hashlib.sha256(b"ana@example.com").hexdigest()[:32]
        # THEN the id is neither the plain hash nor the id under another key
        assert lead_id_for("ana@example.com") != guessed
        keyed = lead_id_for("ana@example.com")
        identity.use_id_key("another-key")
        assert lead_id_for("ana@example.com") != keyed
    finally:
        identity.use_id_key("")


def test_every_spelling_of_an_address_is_one_id() -> None:
    assert len({lead_id_for(s) for s in SPELLINGS}) == 1


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_api_finds_and_erases_a_lead_by_any_spelling(app_container: Container,
                                                         spelling: str) -> None:
    # GIVEN a lead created under one spelling
    ingest(app_container.store, app_container.rules,
           [form(SPELLINGS[0], "k1", NOW)], NOW)
    client = client_for("leads_api")
    # WHEN it is looked up and erased under another (the address in the body, as it is spelled)
    shown = client.post("/leads/lookup", json={"email": spelling}, headers=AUTH)
    erased = client.post("/leads/erase", json={"email": spelling}, headers=AUTH)
    # THEN both find it, and it is gone
    assert shown.status_code == 200 and erased.status_code == 200
    assert app_container.store.get_lead(lead_id_for(SPELLINGS[0])) is None


def test_a_lead_stored_under_the_old_unkeyed_id_is_still_found_and_erased(
        app_container: Container) -> None:
    # GIVEN a lead written by an earlier release (unkeyed id)
    old = legacy_lead_id("old@example.com")
    app_container.store.put_lead(LeadState(lead_id=old, email="old@example.com",
                                           created_at=NOW, updated_at=NOW))
    client = client_for("leads_api")
    # WHEN it is looked up and erased by address
    assert client.post("/leads/lookup", json={"email": "old@example.com"},
                       headers=AUTH).status_code == 200
    assert client.post("/leads/erase", json={"email": "old@example.com"},
                       headers=AUTH).status_code == 200
    # THEN it is gone
    assert app_container.store.get_lead(old) is None


@pytest.mark.parametrize("text", ["l_" + "a" * 2000, "l___x__", "l_..", "l_a/b"])
def test_text_that_is_no_lead_id_never_reaches_the_store_as_one(store: Any, text: str) -> None:
    # GIVEN a store (Firestore refuses ids over 1,500 bytes, `a/b` is a path there)
    # WHEN `leadscore lead show` (find_lead) is given text that only starts like an id
    # THEN it is read as an address would be, and nothing is found (no InvalidArgument)
    assert find_lead(store, text) is None
