"""Bounds on what strangers can make us store (DESIGN.md rule 10: documents stay bounded).

A form is anonymous, so whatever one post may add to a lead, many posts may add again.
Two bounds keep a lead document far below Firestore's 1 MiB whatever arrives:

- per submission (refused with 422 naming the fields): at most `MAX_PROFILE_FIELDS`
  fields, names of at most `MAX_FIELD_NAME` characters, values of at most
  `MAX_FIELD_VALUE` characters;
- per lead (applied when facts are merged): at most `MAX_PROFILE_FIELDS` distinct profile
  fields; a field the lead does not have yet is dropped once it has that many (known
  fields still update), so the profile is at most ~55 KB however many posts arrive.
"""

from __future__ import annotations

from typing import Any

# One profile field's value. Here, beside its bounds, rather than with the event models, so
# the rules and the lead state name it without building every event model (issue 20: the
# functions that validate no events skip that cost at cold start).
ProfileValue = str | int | float | bool | None

MAX_PROFILE_FIELDS = 50
MAX_FIELD_NAME = 64
MAX_FIELD_VALUE = 1000


def profile_problems(profile: dict[str, Any]) -> list[str]:
    """What makes one submission's profile too big (empty when it is within bounds)."""
    problems = []
    if len(profile) > MAX_PROFILE_FIELDS:
        problems.append(f"{len(profile)} fields: at most {MAX_PROFILE_FIELDS} are accepted")
    for name, value in profile.items():
        if len(name) > MAX_FIELD_NAME:
            problems.append(f"field name {name[:MAX_FIELD_NAME]!r}... is longer than "
                            f"{MAX_FIELD_NAME} characters")
        elif isinstance(value, str) and len(value) > MAX_FIELD_VALUE:
            problems.append(f"field {name!r} is longer than {MAX_FIELD_VALUE} characters")
    return problems


def check_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """A pydantic validator: the profile unchanged, or a ValueError listing the problems."""
    problems = profile_problems(profile)
    if problems:
        raise ValueError("; ".join(problems[:5]))
    return profile


def admits(profile: dict[str, Any], name: str) -> bool:
    """Whether a lead with this profile may take this field (a known one, or room left)."""
    return name in profile or len(profile) < MAX_PROFILE_FIELDS
