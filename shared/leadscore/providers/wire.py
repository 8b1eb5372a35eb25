"""Shared pieces for outside wire formats: lenient marshmallow schemas, JSON loading, and
marshmallow's nested messages flattened into our named-field errors."""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, missing

from leadscore.errors import ValidationFailed
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
# kept on each schema instance (`only`, `exclude` and `unknown` given to one change what it
# loads), under a name marshmallow never uses
_PLAN_ATTRIBUTE = "_leadscore_plain_plan"


def _plan(schema: Schema) -> tuple[_PlainField, ...] | None:
    """How `schema.load` treats an item whose every value already has its field's JSON
    type: it returns each value unchanged (`String` a str, `Integer` an int, `Boolean` a
    bool with the default truthy/falsy sets, `Raw` anything), fills defaults and drops
    unknown keys. None when the schema does more than that (hooks, validators, other
    field types, dotted attributes, unknown keys kept or refused)."""
    if any(schema._hooks.values()) or schema.unknown != EXCLUDE or schema.many or \
            schema.partial:
        return None
    out: list[_PlainField] = []
    for name, field in schema.load_fields.items():
        kind = type(field)
        key = field.attribute or name
        if kind not in _EXACT or field.validators or field.pre_load or field.post_load or \
                "." in key or (kind is fields.Boolean and (
                    field.truthy is not fields.Boolean.truthy  # type: ignore[attr-defined]
                    or field.falsy is not fields.Boolean.falsy)):  # type: ignore[attr-defined]
            return None
        out.append((field.data_key or name, key, _EXACT[kind], field.allow_none,
                    field.required, field.load_default))
    return tuple(out)


def load_plain(schema: Schema, item: dict[str, Any]) -> dict[str, Any] | None:
    """`schema.load(item)` without marshmallow's per-field machinery when that gives the
    same dict (see `_plan`: every present value of its field's exact JSON type); None when
    it might not, and the caller loads the item with marshmallow (errors included). A
    provider batch of 1,000 items spent most of its parsing in marshmallow (issue 20)."""
    kept = vars(schema)
    plan = kept.get(_PLAN_ATTRIBUTE, missing)
    if plan is missing:
        plan = kept[_PLAN_ATTRIBUTE] = _plan(schema)
    if plan is None:
        return None
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
