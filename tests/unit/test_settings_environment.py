"""Settings from the environment: the small reader in config.py that replaced pydantic-settings
(issue 20's cold start) reads the same variables the same way, and a bad value still ends in
one error naming the setting."""

from __future__ import annotations

from pathlib import Path
from typing import get_origin

import pytest
from pydantic import SecretStr, ValidationError

from leadscore.config import Settings

pytestmark = pytest.mark.usefixtures("clean_environment")


def test_each_setting_is_read_from_its_leadscore_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN variables of several kinds: text, secret, number, flag, path
    monkeypatch.setenv("LEADSCORE_STORE", "memory")
    monkeypatch.setenv("LEADSCORE_API_TOKEN", "one, two")
    monkeypatch.setenv("LEADSCORE_INGEST_MAX_BYTES", "2048")
    monkeypatch.setenv("LEADSCORE_SLACK_SHOW_EMAIL", "yes")
    monkeypatch.setenv("LEADSCORE_HOME", "/srv/leads")
    # WHEN settings are built
    settings = Settings()
    # THEN each has its variable's value, in its own type
    assert settings.store == "memory"
    assert isinstance(settings.api_token, SecretStr) and settings.api_tokens() == ["one", "two"]
    assert settings.ingest_max_bytes == 2048
    assert settings.slack_show_email is True
    assert settings.home == Path("/srv/leads")


def test_variables_are_matched_whatever_their_case(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a variable spelled in lower case (pydantic-settings accepted it too)
    monkeypatch.setenv("leadscore_store", "memory")
    # THEN it is read
    assert Settings().store == "memory"


def test_googles_own_names_are_read_without_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN Google's variables, and prefixed look-alikes that must not count
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "acme")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8681")
    monkeypatch.setenv("LEADSCORE_GOOGLE_CLOUD_PROJECT", "not-this-one")
    # WHEN settings are built
    settings = Settings()
    # THEN the unprefixed names win
    assert settings.google_cloud_project == "acme"
    assert settings.firestore_emulator_host == "127.0.0.1:8681"


def test_values_given_in_code_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the environment names one store and one project
    monkeypatch.setenv("LEADSCORE_STORE", "firestore")
    monkeypatch.setenv("LEADSCORE_API_TOKEN", "from-env")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    # WHEN code gives others (by field name, as tests and `--store` do)
    settings = Settings(store="memory", google_cloud_project="from-code")
    # THEN code wins where it speaks, and the environment fills in the rest
    assert settings.store == "memory"
    assert settings.google_cloud_project == "from-code"
    assert settings.api_tokens() == ["from-env"]


def test_unset_settings_keep_their_defaults_and_unknown_variables_are_ignored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN only a variable no setting has
    monkeypatch.setenv("LEADSCORE_NO_SUCH_SETTING", "x")
    # WHEN settings are built
    settings = Settings()
    # THEN nothing fails and the defaults hold
    assert settings.store == "sqlite:///leads.db"
    assert settings.ingest_max_bytes == 1024 * 1024
    assert settings.api_tokens() == []
    assert not hasattr(settings, "no_such_setting")


def test_json_settings_are_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN JSON mappings, one whose values must become numbers
    monkeypatch.setenv("LEADSCORE_FORM_FIELD_MAP", '{"Branche": "industry"}')
    monkeypatch.setenv("LEADSCORE_BREVO_STAGE_LISTS", '{"mql": "12"}')
    # WHEN settings are built
    settings = Settings()
    # THEN they are mappings of the declared types
    assert settings.form_field_map == {"Branche": "industry"}
    assert settings.brevo_stage_lists == {"mql": 12}


def test_every_mapping_setting_is_read_as_json() -> None:
    # GIVEN every setting whose type is a mapping (a new one must join the JSON reader)
    mappings = [name for name, field in Settings.model_fields.items()
                if get_origin(field.annotation) is dict]
    assert mappings
    for name in mappings:
        # WHEN its value comes as text, as from the environment
        settings = Settings.model_validate({name: "{}"})
        # THEN it is decoded as JSON
        assert getattr(settings, name) == {}


@pytest.mark.parametrize(("variable", "value", "field", "problem"), [
    ("LEADSCORE_FORM_FIELD_MAP", "{bad", "form_field_map",
     "LEADSCORE_FORM_FIELD_MAP is not valid JSON"),
    ("LEADSCORE_TYPEFORM_FORMS", "", "typeform_forms",
     "LEADSCORE_TYPEFORM_FORMS is not valid JSON"),
    ("LEADSCORE_TALLY_FORMS", "[]", "tally_forms", "valid dictionary"),
    ("LEADSCORE_BREVO_STAGE_LISTS", '{"mql": "twelve"}', "brevo_stage_lists", "valid integer"),
    ("LEADSCORE_INGEST_MAX_BYTES", "12", "ingest_max_bytes", "greater than or equal to 1024"),
    ("LEADSCORE_INGEST_MAX_BYTES", "a lot", "ingest_max_bytes", "valid integer"),
    ("LEADSCORE_SLACK_SHOW_EMAIL", "maybe", "slack_show_email", "valid boolean"),
    ("LEADSCORE_BREVO_NON_OPENER_LIST", "", "brevo_non_opener_list", "valid integer"),
    ("LEADSCORE_MAILCHIMP_REMOVAL", "shred", "mailchimp_removal", "match pattern"),
])
def test_a_bad_value_is_one_error_naming_its_setting(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str,
        problem: str) -> None:
    # GIVEN one variable with a value its setting cannot take
    monkeypatch.setenv(variable, value)
    # WHEN settings are built
    with pytest.raises(ValidationError) as caught:
        Settings()
    # THEN the one error names the setting and says what is wrong
    errors = caught.value.errors()
    assert [e["loc"][0] for e in errors] == [field]
    assert problem in errors[0]["msg"]
