"""Rules for behaviour on the website: which page views and tracked events are which activity.

A page view matches the first `pages` rule whose `path` pattern (shell-style: `*`, `?`,
`[...]`) matches its URL path, else it is `default_page_activity` (none: not scored). A
tracked event is looked up by its exact name in `events`. The activity then scores like any
`activity.<name>` engagement rule (points, half-life, caps). Segment's semantic email and
e-commerce events (Email Opened, Order Completed...) map to our email and purchase events
when `semantic_events` is on; only server write keys may send those.
"""

import fnmatch
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadscore.domain.defaults import empty_list

ACTIVITY = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def _activity(value: str) -> str:
    if not ACTIVITY.match(value):
        raise ValueError("an activity is a lower-case slug: letters, digits, '_' or '-'")
    return value


class PageRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=256, pattern=r"^/")
    activity: str

    _slug = field_validator("activity")(_activity)


class WebsiteRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pages: list[PageRule] = Field(default_factory=empty_list)
    default_page_activity: str | None = "website_visit"
    events: dict[str, str] = Field(default_factory=dict)  # Segment event name -> activity
    semantic_events: bool = True

    @field_validator("default_page_activity")
    @classmethod
    def _default(cls, value: str | None) -> str | None:
        return None if value is None else _activity(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: dict[str, str]) -> dict[str, str]:
        for name, activity in value.items():
            if not name.strip() or len(name) > 200:
                raise ValueError(f"event name {name!r} must be 1-200 characters")
            _activity(activity)
        return value

    def page_activity(self, path: str) -> str | None:
        """The activity a view of `path` counts as (the query string never matters)."""
        clean = path.split("?", 1)[0].split("#", 1)[0] or "/"
        for rule in self.pages:
            if fnmatch.fnmatchcase(clean, rule.path):
                return rule.activity
        return self.default_page_activity

    def event_activity(self, name: str) -> str | None:
        return self.events.get(name)
