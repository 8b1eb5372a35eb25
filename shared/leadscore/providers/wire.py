"""Shared pieces for outside wire formats: lenient marshmallow schemas, JSON loading, and
marshmallow's nested messages flattened into our named-field errors."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, missing

from leadscore.errors import ValidationFailed
from leadscore.logs import warning
from leadscore.providers.json_body import parse_json

__all__ = ["WireSchema", "load_json", "load_plain", "parse_json", "schema_errors", "schema_for"]

S = TypeVar("S", bound=Schema)
_SCHEMAS = threading.local()


class WireSchema(Schema):
    """Providers add fields over time: keep what we know, drop the rest (never fail on it)."""

    class Meta:
        unknown = EXCLUDE


def schema_for(cls: type[S]) -> S:
    """This thread's instance of a wire schema. Building one deep-copies its declared fields
    (about 0.1 ms, a tenth of a small webhook's request in the issue 20 profile); one per
    thread and class, so no instance is ever shared between concurrent requests."""
    made: dict[type[Schema], Schema] | None = getattr(_SCHEMAS, "made", None)
    if made is None:
        made = _SCHEMAS.made = {}
    found = made.get(cls)
    if found is None:
        found = made[cls] = cls()
    return found  # type: ignore[return-value]


# (data key, output key, the one JSON type the field returns unchanged (None: any),
#  allow_none, required, load_default) per field of a schema `load_plain` may shortcut
_PlainField = tuple[str, str, type | None, bool, bool, Any]
_EXACT: dict[type[fields.Field[Any]], type | None] = {
    fields.Raw: None, fields.String: str, fields.Integer: int, fields.Boolean: bool}
# a value of each exact type, for the plan's check against marshmallow (`_agrees`)
_SAMPLE: dict[type | None, Any] = {None: {"k": [1]}, str: "x", int: 7, bool: True}
# kept on each schema instance (`only`, `exclude` and `unknown` given to one change what it
# loads), under a name marshmallow never uses
_PLAN_ATTRIBUTE = "_leadscore_plain_plan"


def _has_hooks(schema: Schema) -> bool | None:
    """Whether the schema has load or validation hooks (None: cannot tell). Two independent
    readings, since `_hooks` is marshmallow's private table: it must still be a table of
    lists, and no attribute of the class may carry the mark marshmallow's decorators set."""
    table = getattr(schema, "_hooks", None)
    if not isinstance(table, Mapping) or not all(
            isinstance(hooks, list | tuple) for hooks in table.values()):
        return None
    marked = any(getattr(value, "__marshmallow_hook__", None)
                 for klass in type(schema).__mro__ for value in vars(klass).values())
    return marked or any(table.values())


def _plan(schema: Schema) -> tuple[_PlainField, ...] | None:
    """How `schema.load` treats an item whose every value already has its field's JSON
    type: it returns each value unchanged (`String` a str, `Integer` an int, `Boolean` a
    bool with the default truthy/falsy sets, `Raw` anything), fills defaults and drops
    unknown keys. None when the schema does more than that (hooks, validators, other
    field types, dotted attributes, unknown keys kept or refused), when this marshmallow
    is not laid out as expected, or when the plan and `schema.load` disagree on samples."""
    try:
        if _has_hooks(schema) is not False or schema.unknown != EXCLUDE or schema.many or \
                schema.partial:
            return None
        out: list[_PlainField] = []
        for name, field in schema.load_fields.items():
            kind = type(field)
            key = field.attribute or name
            # (field-level pre_load and post_load are marshmallow 4's; 3 has none)
            if kind not in _EXACT or field.validators or getattr(field, "pre_load", None) or \
                    getattr(field, "post_load", None) or "." in key or (
                    kind is fields.Boolean and (
                        field.truthy is not fields.Boolean.truthy  # type: ignore[attr-defined]
                        or field.falsy is not fields.Boolean.falsy)):  # type: ignore[attr-defined]
                return None
            out.append((field.data_key or name, key, _EXACT[kind], field.allow_none,
                        field.required, field.load_default))
    except (AttributeError, TypeError):  # marshmallow changed how it keeps these
        return None
    plan = tuple(out)
    return plan if _agrees(schema, plan) else None


def _agrees(schema: Schema, plan: tuple[_PlainField, ...]) -> bool:
    """Whether the plan gives `schema.load`'s own answer on three items (every field of its
    exact type; only the required ones, so defaults fill; None wherever allowed): a
    marshmallow that loads any of these differently turns the shortcut off, loudly."""
    full = {data_key: _SAMPLE[exact] for data_key, _, exact, _, _, _ in plan}
    required = {data_key for data_key, _, _, _, needed, _ in plan if needed}
    nullable = {data_key for data_key, _, _, allow_none, _, _ in plan if allow_none}
    samples = [full, {d: v for d, v in full.items() if d in required},
               {d: None if d in nullable else v for d, v in full.items()}]
    for item in samples:
        try:
            expected = schema.load(dict(item))
        except ValidationError:
            expected = None
        except Exception:  # noqa: BLE001 - not the load this plan copies: leave it be
            expected = missing
        if _apply(plan, item) != expected:
            warning("marshmallow loads differently than expected: plain loads are off",
                    schema=type(schema).__name__)
            return False
    return True


def load_plain(schema: Schema, item: dict[str, Any]) -> dict[str, Any] | None:
    """`schema.load(item)` without marshmallow's per-field machinery when that gives the
    same dict (see `_plan`: every present value of its field's exact JSON type); None when
    it might not, and the caller loads the item with marshmallow (errors included). A
    provider batch of 1,000 items spent most of its parsing in marshmallow (issue 20)."""
    kept = vars(schema)
    plan = kept.get(_PLAN_ATTRIBUTE, missing)
    if plan is missing:
        plan = kept[_PLAN_ATTRIBUTE] = _plan(schema)
    return None if plan is None else _apply(plan, item)


def _apply(plan: tuple[_PlainField, ...], item: dict[str, Any]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for data_key, key, exact, allow_none, required, default in plan:
        value = item.get(data_key, missing)
        if value is missing:
            if required:
                return None
            if default is not missing:
                out[key] = default() if callable(default) else default
        elif value is None:
            if not allow_none:
                return None
            out[key] = None
        elif exact is None or type(value) is exact:
            out[key] = value
        else:
            return None
    return out


def schema_errors(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    details: list[dict[str, Any]] = []

    def walk(messages: Any, path: str) -> None:
        if isinstance(messages, dict):
            for key, value in messages.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
            details.append({"field": path or "(body)", "problem": " ".join(messages)})
        elif isinstance(messages, list):
            for i, value in enumerate(messages):
                walk(value, f"{path}.{i}")
        else:
            details.append({"field": path or "(body)", "problem": str(messages)})

    walk(exc.messages, prefix)
    return ValidationFailed(f"{len(details)} invalid field(s) in the payload", details=details)


def load_json(schema: Schema, raw: bytes, many: bool = False) -> Any:
    """Parse and validate a JSON body against a wire schema: 400 or 422 on failure."""
    data = parse_json(raw)
    try:
        return schema.load(data, many=many)
    except ValidationError as exc:
        raise schema_errors(exc) from None
