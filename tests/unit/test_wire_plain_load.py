"""A batch item loaded without marshmallow's per-field machinery is exactly what the wire
schema's `load` gives, and any item that might differ is left to marshmallow."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validates_schema

import leadscore.providers
from leadscore.providers.email_events import load_item
from leadscore.providers.mailgun import _EventData
from leadscore.providers.sendgrid import EventSchema
from leadscore.providers.wire import WireSchema, load_plain

# values of every JSON type and a few near misses (a bool for an int, digits for an int)
VALUES: list[Any] = [None, True, False, 0, 1, -7, 1763800000, "1763800000", 1.5, 2.0, "",
                     "open", "click", "a@b.example", [], ["x"], {}, {"k": "v"}]


WELL_FORMED: dict[str, Any] = {
    "email": "a@b.example", "event": "open", "timestamp": 1763800000, "sg_event_id": "e1",
    "sg_message_id": "m1", "sg_machine_open": False, "url": "https://x.example/", "type": None}


def random_item(rnd: random.Random) -> dict[str, Any]:
    """A well-formed item with a few fields dropped or given any JSON value."""
    item = {k: v for k, v in WELL_FORMED.items() if rnd.random() < 0.9}
    for name in rnd.sample(sorted(WELL_FORMED), rnd.randint(0, 2)):
        item[name] = rnd.choice(VALUES)
    if rnd.random() < 0.3:
        item["unknown_field"] = rnd.choice(VALUES)
    return item


def marshmallow_load(schema: Schema, item: dict[str, Any]) -> dict[str, Any] | str:
    try:
        loaded: dict[str, Any] = schema.load(item)
    except ValidationError:
        return "refused"
    return loaded


@pytest.mark.parametrize("seed", range(5))
def test_a_plain_load_equals_marshmallow_whenever_it_answers(seed: int) -> None:
    # GIVEN the SendGrid event schema and thousands of items with every JSON type per field
    schema, rnd = EventSchema(), random.Random(seed)
    answered = 0
    for _ in range(3000):
        item = random_item(rnd)
        # WHEN the item is loaded without marshmallow
        plain = load_plain(schema, item)
        # THEN it is marshmallow's own result, value for value and type for type
        if plain is not None:
            answered += 1
            expected = marshmallow_load(schema, item)
            assert plain == expected, item
            assert [type(v) for v in plain.values()] == [type(v) for v in expected.values()]
        # AND the item's loader gives marshmallow's answer either way
        loaded = load_item(schema, item)
        assert (loaded if loaded is not None else "refused") == marshmallow_load(schema, item)
    assert 100 < answered < 3000  # both ways are taken, so this test can fail


def test_a_well_formed_sendgrid_item_takes_the_shortcut_with_defaults_filled() -> None:
    # GIVEN a usual SendGrid open with an unknown field
    item = {"email": "a@b.example", "event": "open", "timestamp": 1763800000,
            "sg_event_id": "e1", "category": ["x"]}
    # WHEN it is loaded without marshmallow
    plain = load_plain(EventSchema(), item)
    # THEN it is what marshmallow gives: defaults filled, the unknown field dropped
    assert plain == marshmallow_load(EventSchema(), item)
    assert plain == {"email": "a@b.example", "event": "open", "timestamp": 1763800000,
                     "sg_event_id": "e1", "sg_message_id": None, "sg_machine_open": False,
                     "url": None, "type": None}


def test_a_value_marshmallow_would_convert_or_refuse_is_left_to_marshmallow() -> None:
    # GIVEN items whose timestamp marshmallow converts (digits, a float) or refuses (a bool)
    for timestamp in ("1763800000", 1763800000.0, True):
        item = {"email": "a@b.example", "event": "open", "timestamp": timestamp}
        # WHEN loaded without marshmallow THEN no answer: marshmallow decides
        assert load_plain(EventSchema(), item) is None
    # AND a missing required field is left to marshmallow's error too
    assert load_plain(EventSchema(), {"email": "a@b.example", "event": "open"}) is None


def test_a_schema_instance_with_its_own_options_is_loaded_by_its_own_plan() -> None:
    # GIVEN the default SendGrid schema used first, then instances with their own options
    item = {"email": "a@b.example", "event": "open", "timestamp": 1763800000, "extra": 1}
    assert load_plain(EventSchema(), item) is not None
    refusing, narrow = EventSchema(unknown=RAISE), EventSchema(only=["event", "timestamp"])
    # WHEN each loads the same item without marshmallow
    # THEN unknown keys refused are left to marshmallow, and `only` keeps only its fields
    assert load_plain(refusing, item) is None
    assert load_plain(narrow, item) == narrow.load(item) == {"event": "open",
                                                             "timestamp": 1763800000}


def test_schemas_that_do_more_than_copy_values_never_take_the_shortcut() -> None:
    # GIVEN a schema with a hook, one with a validator, and Mailgun's (dict fields)
    class Hooked(WireSchema):
        event = fields.String()

        @validates_schema
        def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
            raise ValidationError("never")

    class Validated(WireSchema):
        event = fields.String(validate=lambda v: v == "open")

    item = {"event": "click", "id": "1", "timestamp": 1}
    # WHEN loaded without marshmallow THEN no answer for any of them
    for schema in (Hooked(), Validated(), _EventData()):
        assert load_plain(schema, item) is None


# values of each field type's JSON type, so that whole items often take the shortcut
TYPED: dict[type, list[Any]] = {
    fields.String: ["", "open", "a@b.example", "2026-11-01T10:00:00Z", "1763800000"],
    fields.Integer: [0, 1, -7, 1763800000], fields.Boolean: [True, False], fields.Raw: VALUES}


def our_wire_schemas() -> list[type[Schema]]:
    """Every marshmallow schema leadscore defines (each provider's, tracking's, HubSpot's)."""
    for module in pkgutil.iter_modules(leadscore.providers.__path__):
        importlib.import_module(f"leadscore.providers.{module.name}")
    importlib.import_module("leadscore.tracking.wire")
    importlib.import_module("leadscore.integrations.hubspot_webhook")

    def below(cls: type[Schema]) -> Iterator[type[Schema]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return sorted({c for c in below(Schema) if c.__module__.startswith("leadscore.")},
                  key=lambda c: (c.__module__, c.__qualname__))


def typed_item(schema: Schema, rnd: random.Random) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for name, field in schema.load_fields.items():
        roll = rnd.random()
        if roll < 0.1:
            continue
        pool = TYPED.get(type(field), VALUES) if roll < 0.85 else VALUES
        item[field.data_key or name] = None if roll > 0.97 else rnd.choice(pool)
    if rnd.random() < 0.3:
        item["unknown_field"] = rnd.choice(VALUES)
    return item


def test_every_wire_schema_of_ours_loads_plain_exactly_as_marshmallow() -> None:
    # GIVEN every wire schema leadscore has, on the installed marshmallow, and items with
    # values of every JSON type (mostly each field's own)
    rnd, shortcut_schemas = random.Random(20), set()
    for cls in our_wire_schemas():
        schema = cls()
        for _ in range(400):
            item = typed_item(schema, rnd)
            # WHEN an item is loaded without marshmallow
            plain = load_plain(schema, item)
            expected = marshmallow_load(schema, item)
            # THEN whenever the shortcut answers, it is marshmallow's own result, type for type
            if plain is not None:
                shortcut_schemas.add(cls.__qualname__ + "@" + cls.__module__)
                assert plain == expected, (cls, item)
                assert [type(v) for v in plain.values()] == [
                    type(v) for v in expected.values()], (cls, item)
            # AND the item's loader gives marshmallow's answer either way
            loaded = load_item(schema, item)
            assert (loaded if loaded is not None else "refused") == expected, (cls, item)
    # (the shortcut is taken by several schemas, so this test can fail; a marshmallow that
    # turned it off everywhere shows here too)
    assert len(shortcut_schemas) >= 5, shortcut_schemas


SENDGRID_OPEN = {"email": "a@b.example", "event": "open", "timestamp": 1763800000,
                 "sg_event_id": "e1"}


@pytest.mark.parametrize("hooks", ["gone", ("post_load",), {"post_load": None}],
                         ids=["gone", "a tuple", "a table of no lists"])
def test_a_marshmallow_that_keeps_its_hooks_otherwise_gets_the_full_load(
        hooks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN marshmallow's private hook table gone, or of another shape (a later release)
    for cls in EventSchema.__mro__:
        if "_hooks" in vars(cls):
            if hooks == "gone":
                monkeypatch.delattr(cls, "_hooks")
            else:
                monkeypatch.setattr(cls, "_hooks", hooks)
    # WHEN an item is loaded THEN no shortcut (and no error): marshmallow loads it
    assert load_plain(EventSchema(), dict(SENDGRID_OPEN)) is None
    monkeypatch.undo()
    assert load_item(EventSchema(), dict(SENDGRID_OPEN)) == marshmallow_load(
        EventSchema(), dict(SENDGRID_OPEN))


def test_a_hook_the_private_table_does_not_list_still_turns_the_shortcut_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a schema whose post_load hook changes the data, and a marshmallow whose private
    # table no longer lists it (hooks kept elsewhere)
    class Tagged(WireSchema):
        event = fields.String()

        @post_load
        def _tag(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return {**data, "tagged": True}

    monkeypatch.setattr(Tagged, "_hooks", defaultdict(list))
    # WHEN an item is loaded THEN the hook's mark is seen: no shortcut
    assert load_plain(Tagged(), {"event": "open"}) is None


def test_a_marshmallow_that_loads_a_type_otherwise_turns_the_shortcut_off(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a marshmallow whose String loads differently (a later release, say)
    real = fields.String._deserialize

    def shouting(self: fields.String, value: Any, *args: Any, **kwargs: Any) -> Any:
        return real(self, value, *args, **kwargs).upper()

    monkeypatch.setattr(fields.String, "_deserialize", shouting)
    schema = EventSchema()
    # WHEN a well-formed item is loaded
    with caplog.at_level(logging.WARNING):
        plain = load_plain(schema, dict(SENDGRID_OPEN))
    # THEN the plan's samples disagree with marshmallow: no shortcut, said once in the log
    assert plain is None
    assert "plain loads are off" in caplog.text
    # AND the item's loader gives marshmallow's (changed) answer
    loaded = load_item(schema, dict(SENDGRID_OPEN))
    assert loaded == marshmallow_load(schema, dict(SENDGRID_OPEN))
    assert loaded is not None and loaded["event"] == "OPEN"
