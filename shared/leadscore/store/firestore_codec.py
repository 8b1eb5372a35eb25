"""How a LeadState is laid out in a Firestore document.

Top-level timestamps are stored as float epoch seconds: Firestore's Maximum and Minimum
transforms only order numbers, and the blind write path needs them for "last open at" and
friends. Nested timestamps (profile and order maps) keep Firestore's native type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

from leadscore.domain.identity import shard_of
from leadscore.domain.state import LeadState

TIME_FIELDS = frozenset(
    name for name, info in LeadState.model_fields.items()
    if info.annotation is datetime or set(get_args(info.annotation)) == {datetime, type(None)}
)


def to_seconds(value: datetime) -> float:
    return value.timestamp()


def to_doc(lead: LeadState, include: set[str] | None = None) -> dict[str, Any]:
    doc = lead.model_dump(mode="python", include=include)
    if include is None:
        doc["shard"] = shard_of(lead.lead_id)  # for the decay job's fan-out query
    for name in TIME_FIELDS & doc.keys():
        if doc[name] is not None:
            doc[name] = to_seconds(doc[name])
    return doc


def from_doc(doc: dict[str, Any]) -> LeadState:
    data = dict(doc)
    for name in TIME_FIELDS & data.keys():
        if isinstance(data[name], int | float):
            data[name] = datetime.fromtimestamp(data[name], UTC)
    return LeadState.model_validate(data)
