"""A lead document stays bounded whatever strangers post (issue 21: 23 posts made 1 MiB).

Limits (leadscore.domain.limits): a submission with more than 50 fields, a name over 64
characters or a value over 1,000 characters is refused with 422; a lead keeps at most 50
distinct profile fields (new ones beyond that are dropped, known ones still update).
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any
from urllib.parse import urlencode

import pytest
from functional.conftest import client_for

from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.domain.limits import MAX_FIELD_VALUE, MAX_PROFILE_FIELDS

EMAIL = "target@example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


def big_form(round_: int, fields: int = MAX_PROFILE_FIELDS - 2) -> bytes:
    data = {"email": EMAIL, "form": "contact"}
    data.update({f"f{round_}_{i}": chr(65 + i % 26) * MAX_FIELD_VALUE for i in range(fields)})
    return urlencode(data).encode()


def stored_size(app: Container) -> int:
    """The lead as its store holds it, encoded (JSON: SQLite's column; Firestore's doc)."""
    lead_id = lead_id_for(EMAIL)
    raw = getattr(app.store, "_leads", None)
    if raw is not None and hasattr(raw, "document"):  # Firestore: the document itself
        doc = raw.document(lead_id).get().to_dict()
        return len(json.dumps(doc, default=str).encode())
    lead = app.store.get_lead(lead_id)
    assert lead is not None
    return len(lead.model_dump_json().encode())


def test_many_big_anonymous_forms_leave_the_lead_document_bounded(
        app_container: Container) -> None:
    client = client_for("form_submission")
    # WHEN 30 anonymous posts each bring 48 new fields of 1,000 characters (1.4 MB in all)
    sizes = []
    for round_ in range(30):
        answer = client.post("/", data=big_form(round_), headers=FORM)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        sizes.append(stored_size(app_container))
    lead = app_container.store.get_lead(lead_id_for(EMAIL))
    print(f"\nlead document after 30 big posts: {sizes[-1] / 1024:.1f} KiB "
          f"(after the first: {sizes[0] / 1024:.1f} KiB)")
    # THEN the profile holds at most 50 fields and the document stays far below 1 MiB
    assert lead is not None and len(lead.profile) <= MAX_PROFILE_FIELDS
    assert max(sizes) < 128 * 1024
    # and later posts no longer grow it
    assert sizes[-1] - sizes[2] < 8 * 1024


@pytest.mark.parametrize(("extra", "problem"), [
    ({f"x{i}": "v" for i in range(MAX_PROFILE_FIELDS + 1)}, "at most 50"),
    ({"n" * 65: "v"}, "longer than 64"),
    ({"message": "m" * (MAX_FIELD_VALUE + 1)}, "longer than 1000"),
])
def test_an_oversized_submission_is_refused_with_422_naming_the_problem(
        app_container: Container, extra: dict[str, Any], problem: str) -> None:
    client = client_for("form_submission")
    body = urlencode({"email": EMAIL, "form": "contact", **extra}).encode()
    answer = client.post("/", data=body, headers=FORM)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert problem in answer.get_data(as_text=True)
    assert app_container.store.get_lead(lead_id_for(EMAIL)) is None


def test_refused_posts_with_long_field_names_leave_no_memory_behind(
        app_container: Container) -> None:
    # GIVEN a form endpoint that has served a post (its lazy imports and caches are warm)
    client = client_for("form_submission")
    client.post("/", data=urlencode({"email": EMAIL, "form": "contact"}).encode(),
                headers=FORM)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # WHEN strangers post 20 forms with a form name and a field name of 200,000
        # characters each (refused: 422), 8 MB of names in all
        for round_ in range(20):
            body = urlencode({"email": EMAIL, "form": f"{round_}" + "F" * 200_000,
                              f"{round_}" + "n" * 200_000: "x"}).encode()
            answer = client.post("/", data=body, headers=FORM)
            assert answer.status_code == 422, answer.get_data(as_text=True)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # THEN almost nothing of them is kept (remembering each name would pin 16 MB)
    assert kept < 2_000_000, kept
