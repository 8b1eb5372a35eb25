"""The one Settings object. Nothing else in leadscore reads os.environ.

Settings are read from the environment by the few lines of `_from_environment`, not by
pydantic-settings: importing pydantic-settings (and the python-dotenv, argparse and cloud
secret providers it brings) cost 20-25 ms of every function's cold start (issue 20), more
than reading a hundred variables by name ever needs.
"""

# No `from __future__ import annotations` here: pydantic would turn each of the hundred field
# annotations back from a string (a compile and an eval each: ~1 ms of every cold start).
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

MIB = 1024 * 1024


def default_home() -> Path:
    """Where the embedded store lives unless LEADSCORE_HOME says otherwise: the user's data
    folder (XDG's `~/.local/share`), so every command finds the same database whatever the
    current folder is. `make run` points it at `.leadscore/` in the project instead."""
    return Path.home() / ".local" / "share" / "leadscore"


ENV_PREFIX = "LEADSCORE_"


def env_name(name: str, alias: object) -> str:
    """The variable a field is read from: `LEADSCORE_<FIELD>`, or its alias (Google's own
    names, e.g. GOOGLE_CLOUD_PROJECT)."""
    return alias if isinstance(alias, str) else ENV_PREFIX + name.upper()


class Settings(BaseModel):
    """Every setting, from `LEADSCORE_*` environment variables (and Google's own names).

    Values given in code win over the environment, which wins over the defaults; variable
    names are matched whatever their case; JSON settings (the `dict` ones) are JSON in the
    environment; other variables are unknown to us and ignored."""

    model_config = ConfigDict(extra="ignore", validate_default=True, validate_by_name=True,
                              validate_by_alias=True)

    home: Path = Field(
        default_factory=lambda: default_home(),
        description="data folder of the embedded store (relative sqlite paths live here)")
    store: str = Field(
        default="sqlite:///leads.db",
        description="sqlite:///PATH (relative to LEADSCORE_HOME; sqlite:////abs/path.db for "
                    "an absolute path), firestore, or memory (tests)",
    )
    rules: Path | None = Field(default=None, description="rules YAML; default: built-in")
    api_token: SecretStr = Field(
        default=SecretStr(""), description="bearer tokens for /ingest, comma-separated")
    ingest_max_bytes: int = Field(default=MIB, ge=1024)
    purchase_max_bytes: int = Field(default=MIB, ge=1024)
    dashboard_tokens: SecretStr = Field(
        default=SecretStr(""), description="dashboard sign-in tokens, comma-separated")
    stripe_secret: SecretStr = Field(default=SecretStr(""), description="whsec_..., comma-sep")
    shopify_secret: SecretStr = SecretStr("")
    woocommerce_secret: SecretStr = SecretStr("")
    purchase_secret: SecretStr = Field(
        default=SecretStr(""), description="secret of the generic purchase format")
    email_max_bytes: int = Field(default=4 * MIB, ge=1024)  # SendGrid batches at 768 KB
    sendgrid_public_key: SecretStr = SecretStr("")
    mailgun_signing_key: SecretStr = SecretStr("")
    mailchimp_secret: SecretStr = SecretStr("")
    postmark_basic_auth: SecretStr = SecretStr("")
    ses_topic_arns: str = ""
    brevo_token: SecretStr = SecretStr("")
    mandrill_webhook_key: SecretStr = Field(
        default=SecretStr(""), description="Mandrill webhook keys (not the API key), comma-sep")
    mandrill_webhook_url: str = Field(
        default="", description="the webhook URL exactly as entered in Mandrill (it is signed)")
    mailjet_basic_auth: SecretStr = Field(
        default=SecretStr(""), description="Mailjet event URL user:password pairs, comma-sep")
    ses_eventbridge_secret: SecretStr = Field(
        default=SecretStr(""), description="API key header value(s) of the EventBridge route")
    sparkpost_basic_auth: SecretStr = Field(
        default=SecretStr(""), description="SparkPost webhook user:password pairs, comma-sep")
    resend_secret: SecretStr = Field(
        default=SecretStr(""), description="Resend (Svix) whsec_... signing secrets, comma-sep")
    form_max_bytes: int = Field(default=MIB, ge=1024)
    form_field_map: dict[str, str] = Field(
        default_factory=dict, description='JSON {"alias": "profile_field"} over the defaults')
    form_honeypots: str = "_gotcha,bot-field,website"
    form_allowed_origins: str = ""
    form_redirect_urls: str = ""
    form_duplicate_window_s: int = Field(default=600, ge=1)
    captcha_secret: SecretStr = SecretStr("")
    captcha_verify_url: str = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    track_server_keys: SecretStr = Field(
        default=SecretStr(""), description="secret write keys of the track function, comma-sep")
    track_client_keys: str = Field(
        default="", description="public write keys (pages, leadscore.js), comma-separated")
    track_allowed_origins: str = Field(
        default="", description="origins that may use a client key, comma-separated")
    track_client_events: str = Field(
        default="", description="event names client keys may track; empty: the rules' names")
    track_visitor_days: int = Field(default=90, ge=1, le=730)
    typeform_secret: SecretStr = SecretStr("")
    typeform_forms: dict[str, str] = Field(
        default_factory=dict, description='JSON {"form_id": "form_kind"}')
    typeform_default_kind: str = "contact"
    tally_secret: SecretStr = SecretStr("")
    tally_forms: dict[str, str] = Field(
        default_factory=dict, description='JSON {"form_id": "form_kind"}')
    tally_default_kind: str = "contact"
    decay_inline_limit: int = Field(default=2000, ge=1)
    decay_deadline_s: float = Field(default=480, gt=0)
    decay_shard_topic: str = ""
    non_opener_topic: str = ""
    ses_suppression_region: str = Field(
        default="", description="AWS region: add flagged non-openers to SES's suppression list")
    handover_topic: str = ""
    handover_webhook_urls: str = ""
    handover_secret: SecretStr = SecretStr("")
    handover_attempts: int = Field(default=3, ge=1, le=10)
    handover_backoff_s: float = Field(default=0.5, ge=0)
    slack_webhook_url: SecretStr = Field(
        default=SecretStr(""), description="Slack incoming webhook for stage-change cards")
    slack_stages: str = Field(default="mql,sql", description="moves up into these get a card")
    slack_show_email: bool = False
    slack_action_url: str = Field(
        default="", description="base URL of the accept/reject endpoint for signed links")
    slack_action_secret: SecretStr = Field(
        default=SecretStr(""), description="HMAC secret(s) of accept/reject links, comma-sep")
    slack_action_ttl_s: int = Field(default=7 * 86400, ge=60)
    dashboard_url: str = Field(
        default="", description="lead page URL; {lead_id} is replaced, else appended")
    hubspot_token: SecretStr = Field(default=SecretStr(""), description="private-app token")
    hubspot_api_url: str = "https://api.hubapi.com"
    hubspot_score_step: float = Field(default=5, ge=0)
    hubspot_client_secret: SecretStr = Field(
        default=SecretStr(""), description="app client secret(s) for webhook signature v3")
    hubspot_webhook_url: str = Field(
        default="", description="public URL HubSpot calls (the signed URI)")
    hubspot_currency: str = Field(
        default="USD", description="currency of deal amounts (the portal's company currency)")
    hubspot_won_stages: str = "closedwon"
    hubspot_lost_stages: str = "closedlost"
    hubspot_attempts: int = Field(default=3, ge=1, le=10)
    hubspot_full_sweep: bool = Field(
        default=True, description="each decay run compares every lead with HubSpot")
    id_key: SecretStr = Field(
        default=SecretStr(""), description="HMAC key of lead ids; empty: a public local key")
    # Scores back in the email tools (issue 22); a tool syncs when its key is set.
    esp_cleanup: bool = Field(
        default=True, description="the sync takes flagged non-openers off each tool's list")
    esp_attempts: int = Field(default=3, ge=1, le=10)
    esp_full_sweep: bool = Field(
        default=True, description="each decay run (its tick, not each shard) compares every "
        "lead with the email tools; shards sync their own stage changes and flags")
    mailchimp_api_key: SecretStr = Field(
        default=SecretStr(""), description="Marketing API key (its suffix names the data centre)")
    mailchimp_list_id: str = Field(default="", description="the audience (list) id")
    mailchimp_api_url: str = Field(default="", description="default: from the key's suffix")
    mailchimp_removal: str = Field(default="tag", pattern="^(archive|unsubscribe|tag)$")
    mailchimp_status_if_new: str = Field(
        default="transactional", pattern="^(subscribed|transactional|pending)$")
    brevo_api_key: SecretStr = Field(default=SecretStr(""), description="Brevo API v3 key")
    brevo_api_url: str = "https://api.brevo.com/v3"
    brevo_stage_lists: dict[str, int] = Field(
        default_factory=dict, description='JSON {"mql": 12, ...}: a list per stage')
    brevo_removal: str = Field(default="list", pattern="^(list|blocklist)$")
    brevo_non_opener_list: int | None = Field(default=None, description="list for non-openers")
    sendgrid_api_key: SecretStr = Field(
        default=SecretStr(""), description="SendGrid key with Marketing and ASM scopes")
    sendgrid_api_url: str = "https://api.sendgrid.com"
    sendgrid_stage_lists: dict[str, str] = Field(
        default_factory=dict, description='JSON {"mql": "list-uuid", ...}: a list per stage')
    sendgrid_removal: str = Field(default="lists", pattern="^(lists|suppress)$")
    sendgrid_suppression_group: int | None = Field(
        default=None, description="unsubscribe group id for non-openers")
    sendgrid_poll_wait_s: float = Field(default=1.0, ge=0, description="between job checks")
    firestore_collection: str = "leads"
    firestore_deadline_s: float = Field(
        default=5.0, gt=0, le=600,
        description="seconds one Firestore call may take, retries included, before the "
                    "request fails with 503 (raise it for long CLI jobs on a slow link)")
    log_level: str = "INFO"
    google_cloud_project: str | None = Field(default=None, validation_alias="GOOGLE_CLOUD_PROJECT")
    firestore_emulator_host: str | None = Field(
        default=None, validation_alias="FIRESTORE_EMULATOR_HOST")

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        return {**_environment(cls, os.environ), **data}

    @field_validator("form_field_map", "typeform_forms", "tally_forms", "brevo_stage_lists",
                     "sendgrid_stage_lists", mode="before")
    @classmethod
    def _json(cls, value: Any, info: ValidationInfo) -> Any:
        """A JSON setting comes from the environment as text; say which one is not JSON."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            variable = env_name(info.field_name or "", None)
            raise ValueError(f"{variable} is not valid JSON: {exc}") from None

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


def _environment(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, str]:
    """The environment's value of each field that has one, by field name (case-insensitive
    variable names, as pydantic-settings read them)."""
    lowered = {key.lower(): value for key, value in environ.items()}
    values: dict[str, str] = {}
    for name, field in model.model_fields.items():
        value = lowered.get(env_name(name, field.validation_alias).lower())
        if value is not None:
            values[name] = value
    return values
