"""The one Settings object. Nothing else in leadscore reads os.environ.

Settings are read from the environment by the few lines of `_environment`, not by
pydantic-settings: importing pydantic-settings (and the python-dotenv, argparse and cloud
secret providers it brings) cost 20-25 ms of every function's cold start (issue 20), more
than reading a hundred variables by name ever needs.

`Settings` is not a pydantic model either, though pydantic still validates it: building a
model class of a hundred fields (pydantic's Python-side schema generation, field by field)
cost about 48 M instructions, some 10 ms, of every function's cold start, while the same
checks written directly as pydantic-core's schema (`_core_schema`, from the annotations
and `setting(...)` constraints below) build in a fraction of that. The values, their lax
parsing, the defaults (validated too) and every error (`pydantic.ValidationError`, one per
bad setting, located by its field name, titled `Settings`) are pydantic-core's, as before.
`model_fields`, `model_validate` and `model_copy` keep the names and meaning the model
had (tests and the container use them).
"""

# No `from __future__ import annotations` here: the annotations are read at import to build
# the validator.
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, ClassVar, get_args, get_origin

from pydantic import SecretStr
from pydantic_core import CoreSchema, SchemaValidator
from pydantic_core import core_schema as cs

MIB = 1024 * 1024


def default_home() -> Path:
    """Where the embedded store lives unless LEADSCORE_HOME says otherwise: the user's data
    folder (XDG's `~/.local/share`), so every command finds the same database whatever the
    current folder is; `make run` uses it too (it sets no LEADSCORE_HOME)."""
    return Path.home() / ".local" / "share" / "leadscore"


ENV_PREFIX = "LEADSCORE_"


def env_name(name: str, alias: object) -> str:
    """The variable a field is read from: `LEADSCORE_<FIELD>`, or its alias (Google's own
    names, e.g. GOOGLE_CLOUD_PROJECT)."""
    return alias if isinstance(alias, str) else ENV_PREFIX + name.upper()


class SettingInfo:
    """One setting's declaration, as pydantic's `FieldInfo` named its parts: the default (or
    a factory of it), the constraints, the variable's alias, a description."""

    __slots__ = ("annotation", "default", "default_factory", "description", "ge", "gt", "le",
                 "pattern", "validation_alias")

    def __init__(self, default: Any = None, *, default_factory: Callable[[], Any] | None = None,
                 ge: float | None = None, gt: float | None = None, le: float | None = None,
                 pattern: str | None = None, validation_alias: str | None = None,
                 description: str | None = None) -> None:
        self.annotation: Any = None  # filled from the class's annotation
        self.default, self.default_factory, self.description = default, default_factory, \
            description
        self.ge, self.gt, self.le, self.pattern = ge, gt, le, pattern
        self.validation_alias = validation_alias


def setting(default: Any = None, **declared: Any) -> Any:
    """A setting with constraints or a description (`Field`'s keywords); typed `Any` so the
    class body reads as the value's type."""
    return SettingInfo(default, **declared)


class Settings:
    """Every setting, from `LEADSCORE_*` environment variables (and Google's own names).

    Values given in code win over the environment, which wins over the defaults; variable
    names are matched whatever their case; JSON settings (the `dict` ones) are JSON in the
    environment; other variables are unknown to us and ignored."""

    model_fields: ClassVar[dict[str, SettingInfo]]  # set below, in declaration order

    home: Path = setting(
        default_factory=lambda: default_home(),
        description="data folder of the embedded store (relative sqlite paths live here)")
    store: str = setting(
        default="sqlite:///leads.db",
        description="sqlite:///PATH (relative to LEADSCORE_HOME; sqlite:////abs/path.db for "
                    "an absolute path), firestore, or memory (tests)",
    )
    rules: Path | None = setting(default=None, description="rules YAML; default: built-in")
    api_token: SecretStr = setting(
        default=SecretStr(""), description="bearer tokens for /ingest, comma-separated")
    ingest_max_bytes: int = setting(default=MIB, ge=1024)
    purchase_max_bytes: int = setting(default=MIB, ge=1024)
    dashboard_tokens: SecretStr = setting(
        default=SecretStr(""), description="dashboard sign-in tokens, comma-separated")
    stripe_secret: SecretStr = setting(default=SecretStr(""), description="whsec_..., comma-sep")
    stripe_connect_test_mode: bool = setting(
        default=False, description="count test-mode events of Connect accounts (staging)")
    shopify_secret: SecretStr = SecretStr("")
    woocommerce_secret: SecretStr = SecretStr("")
    purchase_secret: SecretStr = setting(
        default=SecretStr(""), description="secret of the generic purchase format")
    email_max_bytes: int = setting(default=4 * MIB, ge=1024)  # SendGrid batches at 768 KB
    sendgrid_public_key: SecretStr = SecretStr("")
    mailgun_signing_key: SecretStr = SecretStr("")
    mailchimp_secret: SecretStr = SecretStr("")
    postmark_basic_auth: SecretStr = SecretStr("")
    ses_topic_arns: str = ""
    brevo_token: SecretStr = SecretStr("")
    mandrill_webhook_key: SecretStr = setting(
        default=SecretStr(""), description="Mandrill webhook keys (not the API key), comma-sep")
    mandrill_webhook_url: str = setting(
        default="", description="the webhook URL exactly as entered in Mandrill (it is signed)")
    mailjet_basic_auth: SecretStr = setting(
        default=SecretStr(""), description="Mailjet event URL user:password pairs, comma-sep")
    ses_eventbridge_secret: SecretStr = setting(
        default=SecretStr(""), description="API key header value(s) of the EventBridge route")
    sparkpost_basic_auth: SecretStr = setting(
        default=SecretStr(""), description="SparkPost webhook user:password pairs, comma-sep")
    resend_secret: SecretStr = setting(
        default=SecretStr(""), description="Resend (Svix) whsec_... signing secrets, comma-sep")
    form_max_bytes: int = setting(default=MIB, ge=1024)
    form_field_map: dict[str, str] = setting(
        default_factory=dict, description='JSON {"alias": "profile_field"} over the defaults')
    form_honeypots: str = "_gotcha,bot-field,website"
    form_allowed_origins: str = ""
    form_redirect_urls: str = ""
    form_duplicate_window_s: int = setting(default=600, ge=1)
    captcha_secret: SecretStr = SecretStr("")
    captcha_verify_url: str = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    track_server_keys: SecretStr = setting(
        default=SecretStr(""), description="secret write keys of the track function, comma-sep")
    track_client_keys: str = setting(
        default="", description="public write keys (pages, leadscore.js), comma-separated")
    track_allowed_origins: str = setting(
        default="", description="origins that may use a client key, comma-separated")
    track_client_events: str = setting(
        default="", description="event names client keys may track; empty: the rules' names")
    track_visitor_days: int = setting(default=90, ge=1, le=730)
    typeform_secret: SecretStr = SecretStr("")
    typeform_forms: dict[str, str] = setting(
        default_factory=dict, description='JSON {"form_id": "form_kind"}')
    typeform_default_kind: str = "contact"
    tally_secret: SecretStr = SecretStr("")
    tally_forms: dict[str, str] = setting(
        default_factory=dict, description='JSON {"form_id": "form_kind"}')
    tally_default_kind: str = "contact"
    decay_inline_limit: int = setting(default=2000, ge=1)
    decay_deadline_s: float = setting(default=480, gt=0)
    decay_shard_topic: str = ""
    non_opener_topic: str = ""
    ses_suppression_region: str = setting(
        default="", description="AWS region: add flagged non-openers to SES's suppression list")
    handover_topic: str = ""
    handover_webhook_urls: str = ""
    handover_secret: SecretStr = SecretStr("")
    handover_attempts: int = setting(default=3, ge=1, le=10)
    handover_backoff_s: float = setting(default=0.5, ge=0)
    slack_webhook_url: SecretStr = setting(
        default=SecretStr(""), description="Slack incoming webhook for stage-change cards")
    slack_stages: str = setting(default="mql,sql", description="moves up into these get a card")
    slack_show_email: bool = False
    slack_action_url: str = setting(
        default="", description="base URL of the accept/reject endpoint for signed links")
    slack_action_secret: SecretStr = setting(
        default=SecretStr(""), description="HMAC secret(s) of accept/reject links, comma-sep")
    slack_action_ttl_s: int = setting(default=7 * 86400, ge=60)
    dashboard_url: str = setting(
        default="", description="lead page URL; {lead_id} is replaced, else appended")
    hubspot_token: SecretStr = setting(default=SecretStr(""), description="private-app token")
    hubspot_api_url: str = "https://api.hubapi.com"
    hubspot_score_step: float = setting(default=5, ge=0)
    hubspot_client_secret: SecretStr = setting(
        default=SecretStr(""), description="app client secret(s) for webhook signature v3")
    hubspot_webhook_url: str = setting(
        default="", description="public URL HubSpot calls (the signed URI)")
    hubspot_currency: str = setting(
        default="USD", description="currency of deal amounts (the portal's company currency)")
    hubspot_won_stages: str = "closedwon"
    hubspot_lost_stages: str = "closedlost"
    hubspot_attempts: int = setting(default=3, ge=1, le=10)
    hubspot_full_sweep: bool = setting(
        default=True, description="each decay run compares every lead with HubSpot")
    id_key: SecretStr = setting(
        default=SecretStr(""), description="HMAC key of lead ids; empty: a public local key")
    # Scores back in the email tools (issue 22); a tool syncs when its key is set.
    esp_cleanup: bool = setting(
        default=True, description="the sync takes flagged non-openers off each tool's list")
    esp_attempts: int = setting(default=3, ge=1, le=10)
    esp_full_sweep: bool = setting(
        default=True, description="each decay run (its tick, not each shard) compares every "
        "lead with the email tools; shards sync their own stage changes and flags")
    mailchimp_api_key: SecretStr = setting(
        default=SecretStr(""), description="Marketing API key (its suffix names the data centre)")
    mailchimp_list_id: str = setting(default="", description="the audience (list) id")
    mailchimp_api_url: str = setting(default="", description="default: from the key's suffix")
    mailchimp_removal: str = setting(default="tag", pattern="^(archive|unsubscribe|tag)$")
    mailchimp_status_if_new: str = setting(
        default="transactional", pattern="^(subscribed|transactional|pending)$")
    brevo_api_key: SecretStr = setting(default=SecretStr(""), description="Brevo API v3 key")
    brevo_api_url: str = "https://api.brevo.com/v3"
    brevo_stage_lists: dict[str, int] = setting(
        default_factory=dict, description='JSON {"mql": 12, ...}: a list per stage')
    brevo_removal: str = setting(default="list", pattern="^(list|blocklist)$")
    brevo_non_opener_list: int | None = setting(default=None, description="list for non-openers")
    sendgrid_api_key: SecretStr = setting(
        default=SecretStr(""), description="SendGrid key with Marketing and ASM scopes")
    sendgrid_api_url: str = "https://api.sendgrid.com"
    sendgrid_stage_lists: dict[str, str] = setting(
        default_factory=dict, description='JSON {"mql": "list-uuid", ...}: a list per stage')
    sendgrid_removal: str = setting(default="lists", pattern="^(lists|suppress)$")
    sendgrid_suppression_group: int | None = setting(
        default=None, description="unsubscribe group id for non-openers")
    sendgrid_poll_wait_s: float = setting(default=1.0, ge=0, description="between job checks")
    firestore_collection: str = "leads"
    firestore_deadline_s: float = setting(
        default=5.0, gt=0, le=600,
        description="seconds one Firestore call may take, retries included, before the "
                    "request fails with 503 (raise it for long CLI jobs on a slow link)")
    log_level: str = "INFO"
    google_cloud_project: str | None = setting(
        default=None, validation_alias="GOOGLE_CLOUD_PROJECT")
    firestore_emulator_host: str | None = setting(
        default=None, validation_alias="FIRESTORE_EMULATOR_HOST")

    def __init__(self, **values: Any) -> None:
        """Validate the environment's values under the ones given in code (by field name,
        or by a variable alias); unknown names are ignored."""
        data = {**_environment(os.environ), **_by_name(values)}
        validated, _, _ = _VALIDATOR.validate_python(data)  # (values, extra, fields set)
        self.__dict__.update(validated)

    @classmethod
    def model_validate(cls, obj: Any) -> "Settings":
        """Settings from a mapping, as `Settings(**obj)` (a `Settings` is returned as is)."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping):
            raise TypeError(f"settings come from a mapping, not {type(obj).__name__}")
        return cls(**obj)

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> "Settings":
        """A copy with `update`'s values set as given, unvalidated (as pydantic's copy)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__, **(update or {}))
        return copy

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, as the model was

    def __repr__(self) -> str:  # secrets show as SecretStr's mask, never their value
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"

    def sqlite_path(self) -> Path | None:
        """The SQLite file `store` names (relative paths under `home`), or None."""
        if not self.store.startswith("sqlite:///"):
            return None
        path = Path(self.store.removeprefix("sqlite:///")).expanduser()
        return path if path.is_absolute() or str(path) == ":memory:" else self.home / path

    def dashboard_token_list(self) -> list[str]:
        """Sign-in tokens of the dashboard; rotating them ends every session."""
        return [t.strip() for t in self.dashboard_tokens.get_secret_value().split(",")
                if t.strip()]

    def api_tokens(self) -> list[str]:
        """All active tokens; more than one lets operators rotate without downtime."""
        return [t.strip() for t in self.api_token.get_secret_value().split(",") if t.strip()]

    def track_keys(self) -> tuple[list[str], list[str]]:
        """(server keys, client keys) of the track function; several of each can rotate."""
        def split(value: str) -> list[str]:
            return [k.strip() for k in value.split(",") if k.strip()]
        return (split(self.track_server_keys.get_secret_value()),
                split(self.track_client_keys))


def _by_name(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values keyed by field name (a variable alias such as GOOGLE_CLOUD_PROJECT names its
    field, as the model's `validate_by_alias` allowed)."""
    aliases = _aliases()
    return {aliases.get(key, key): value for key, value in values.items()}


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment's value of each field that has one, by field name (case-insensitive
    variable names, as pydantic-settings read them)."""
    lowered = {key.lower(): value for key, value in environ.items()}
    values: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value = lowered.get(env_name(name, field.validation_alias).lower())
        if value is not None:
            values[name] = value
    return values


def _aliases() -> dict[str, str]:
    return {f.validation_alias: name for name, f in Settings.model_fields.items()
            if f.validation_alias}


def _json(variable: str) -> Callable[[Any], Any]:
    """A JSON setting comes from the environment as text; say which one is not JSON."""
    def decode(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{variable} is not valid JSON: {exc}") from None
    return decode


# pydantic's own schemas of the two classes (as `TypeAdapter(SecretStr).core_schema` and
# `TypeAdapter(Path).core_schema` print them in Python mode): the value as is, or from text.
_SECRET = cs.union_schema([cs.is_instance_schema(SecretStr),
                           cs.no_info_after_validator_function(SecretStr, cs.str_schema())],
                          custom_error_type="string_type")
_PATH = cs.union_schema([cs.is_instance_schema(Path),
                         cs.no_info_after_validator_function(Path, cs.str_schema(strict=True))],
                        custom_error_type="path_type",
                        custom_error_message=f"Input is not a valid path for {Path}")


def _value_schema(annotation: Any, info: SettingInfo, name: str) -> CoreSchema:
    """pydantic-core's schema of one declared type (the types settings use)."""
    if isinstance(annotation, UnionType):
        inner = [a for a in get_args(annotation) if a is not NoneType]
        assert len(inner) == 1 and len(get_args(annotation)) == 2, annotation
        return cs.nullable_schema(_value_schema(inner[0], info, name))
    if get_origin(annotation) is dict:
        keys, values = get_args(annotation)
        return cs.no_info_before_validator_function(
            _json(env_name(name, None)),
            cs.dict_schema(_value_schema(keys, info, name), _value_schema(values, info, name)))
    if annotation is str:
        return cs.str_schema(pattern=info.pattern)
    if annotation is bool:
        return cs.bool_schema()
    if annotation is int:
        return cs.int_schema(ge=_whole(info.ge), gt=_whole(info.gt), le=_whole(info.le))
    if annotation is float:
        return cs.float_schema(ge=info.ge, gt=info.gt, le=info.le)
    if annotation is SecretStr:
        return _SECRET
    if annotation is Path:
        return _PATH
    raise TypeError(f"setting {name}: no schema for {annotation!r}")


def _whole(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


def _core_schema() -> CoreSchema:
    fields: dict[str, cs.ModelField] = {}
    for name, info in Settings.model_fields.items():
        schema = _value_schema(info.annotation, info, name)
        if info.default_factory is not None:
            schema = cs.with_default_schema(schema, default_factory=info.default_factory,
                                            validate_default=True)
        else:
            schema = cs.with_default_schema(schema, default=info.default, validate_default=True)
        fields[name] = cs.model_field(schema)
    # a model's fields, as pydantic's model had them (errors are titled "Settings")
    return cs.model_fields_schema(fields, model_name="Settings", extra_behavior="ignore")


def _declare() -> None:
    """Collect the class body's declarations into `Settings.model_fields` (the class keeps
    no attribute per setting: each instance has its own values)."""
    declared: dict[str, SettingInfo] = {}
    for name, annotation in Settings.__annotations__.items():
        if name == "model_fields":
            continue
        value = Settings.__dict__[name]
        info = value if isinstance(value, SettingInfo) else SettingInfo(value)
        info.annotation = annotation
        declared[name] = info
        delattr(Settings, name)
    Settings.model_fields = declared


_declare()
_VALIDATOR = SchemaValidator(_core_schema(), cs.CoreConfig(title="Settings"))
