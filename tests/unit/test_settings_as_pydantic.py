"""Settings validate every value as a pydantic model field of the same declaration would.

`Settings` is no longer a pydantic model (issue 20: building the model class was ~10 ms of
every cold start); its validator is written as pydantic-core's schema directly. This test
holds it to pydantic's own reading: for each setting, a `TypeAdapter` of its annotation and
constraints (what the model's field was) and `Settings` must accept the same values as the
same Python values, and refuse the same ones with the same errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_origin

import pytest
from pydantic import Field, SecretStr, TypeAdapter, ValidationError

from leadscore.config import Settings, env_name

TEXT = ["", " ", " 12 ", "1_000", "12.5", "12.0", "2048", "1e3", "true", "YES", "off", "0", "1",
        "x", "/srv/a", "rel/p", "none", "inf", "nan", "-1", "601", "archive", "subscribed",
        "lists", "suppress", "a,b"]
CODE: list[Any] = [None, 3, 2048.0, 2048.5, -1.0, True, Path("/x"), SecretStr("s"), b"bytes",
                   {"a": "b"}, {"mql": "3"}, {"a": 1}, ["a"]]

pytestmark = pytest.mark.usefixtures("clean_environment")


def _pydantic_reading(name: str) -> TypeAdapter[Any]:
    info = Settings.model_fields[name]
    constraints = {k: getattr(info, k) for k in ("ge", "gt", "le", "pattern")
                   if getattr(info, k) is not None}
    return TypeAdapter(Annotated[info.annotation, Field(**constraints)])


def _outcome(read: Any, given: Any) -> tuple[str, Any]:
    try:
        value = read(given)
    except ValidationError as exc:
        return "refused", [(e["type"], e["msg"]) for e in exc.errors()]
    return "read", (type(value), value.get_secret_value() if isinstance(value, SecretStr)
                    else value)


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_each_setting_reads_and_refuses_values_as_its_pydantic_field_did(name: str) -> None:
    # GIVEN the setting's pydantic reading (its annotation and constraints)
    adapter = _pydantic_reading(name)
    is_json = get_origin(Settings.model_fields[name].annotation) is dict  # text is JSON
    # WHEN each value is given (and text as the environment gives it, for non-JSON ones)
    for value in CODE + ([] if is_json else TEXT):
        expected = _outcome(adapter.validate_python, value)
        got = _outcome(lambda given: getattr(Settings(**{name: given}), name), value)
        # THEN Settings reads it, or refuses it, exactly as pydantic does
        assert got == expected, (name, value)


def test_a_bad_environment_value_names_its_variables_setting_in_a_settings_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a variable whose value its setting cannot take
    monkeypatch.setenv(env_name("handover_attempts", None), "eleven")
    # WHEN settings are built
    with pytest.raises(ValidationError) as caught:
        Settings()
    # THEN the error is the model's was: titled Settings, one error at the field's name
    assert caught.value.title == "Settings"
    assert [e["loc"] for e in caught.value.errors()] == [("handover_attempts",)]


def test_secrets_stay_out_of_the_repr_and_copies_update_without_touching_the_original() -> None:
    # GIVEN settings with a secret
    settings = Settings(api_token="hunter2", store="memory")
    # THEN its repr shows the mask, never the secret
    assert "hunter2" not in repr(settings) and "**********" in repr(settings)
    # AND a copy with an update differs only there
    copy = settings.model_copy(update={"store": "firestore"})
    assert copy.store == "firestore" and settings.store == "memory"
    assert copy.model_copy(update={"store": "memory"}) == settings
