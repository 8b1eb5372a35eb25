"""The deploy configuration file, validated before anything runs (pydantic).

Every problem is reported at once: pydantic collects the field errors, and the checks that
span several fields run on the raw data too, so one pass over a bad file names them all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from infra import locations

EMAIL_PROVIDERS = ("sendgrid", "mailgun", "mailchimp", "postmark", "ses", "brevo", "mandrill",
                   "mailjet", "sparkpost", "resend", "ses_eventbridge")
PURCHASE_PLATFORMS = ("stripe", "shopify", "woocommerce", "generic")
# SES needs the account's topic ARNs, so it is off until the operator names them.
# The newer providers are opt-in too: listing them binds their secrets.
DEFAULT_EMAIL_PROVIDERS = ["sendgrid", "mailgun", "mailchimp", "postmark", "brevo"]
# Cloud Run regions are <area>-<direction><n>: europe-west12, me-central2, us-east5,
# northamerica-south1. Unknown-but-well-formed regions are left for gcloud to judge.
REGION = r"^[a-z]+-[a-z]+[1-9][0-9]?$"
MEMBER = r"^(user|group|serviceAccount|domain):[^\s,]+$"


class Size(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory: str = Field(default="512Mi", pattern=r"^\d+(Mi|Gi)$")
    cpu: str = "1"
    timeout_s: int = Field(default=60, ge=1, le=3600)
    max_instances: int = Field(default=20, ge=1, le=1000)
    concurrency: int = Field(default=20, ge=1, le=1000)


def _webhook() -> Size:
    return Size()


def _api() -> Size:
    return Size(max_instances=5, concurrency=40)


def _decay() -> Size:
    return Size(memory="1Gi", timeout_s=540, max_instances=10, concurrency=1)


class Sizes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook: Size = Field(default_factory=_webhook)
    api: Size = Field(default_factory=_api)
    decay: Size = Field(default_factory=_decay)


class DeployConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    region: str = Field(pattern=REGION)
    runtime: Literal["python311", "python312", "python313"] = "python312"
    firestore_location: str | None = Field(
        default=None, description="override; default: the region (see infra/locations.py)")
    firestore_multi_region: bool = False
    backup_retention_days: int = Field(default=14, ge=1, le=98)
    schedule: str = "0 5 * * *"
    time_zone: str = "Etc/UTC"
    email_providers: list[Literal[EMAIL_PROVIDERS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(DEFAULT_EMAIL_PROVIDERS))
    purchase_platforms: list[Literal[PURCHASE_PLATFORMS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(PURCHASE_PLATFORMS))
    typeform: bool = True
    tally: bool = False
    captcha: bool = False
    handover_webhooks: bool = False
    slack: bool = False  # stage-change cards: binds LEADSCORE_SLACK_WEBHOOK_URL to writers
    hubspot: bool = False  # contact sync + deal webhooks: the token and the client secret
    esp_sync: list[Literal["mailchimp", "brevo", "sendgrid"]] = Field(
        default_factory=list, description="email tools the scheduled job syncs scores to")
    invoker_members: list[str] = Field(
        default_factory=list, description="who may call private functions (leads_api)")
    # How the dashboard is reached: `token` (default) serves it publicly behind its own
    # sign-in (LEADSCORE_DASHBOARD_TOKENS, Secure HttpOnly session cookie, CSRF), since a
    # browser sends no Cloud Run identity token and a private function answers it 403
    # before any page; `iam` deploys it private for a deployment that puts Identity-Aware
    # Proxy in front of it (then `invoker_members` get the invoker role on it too).
    dashboard_access: Literal["token", "iam"] = "token"
    build_service_account: str | None = Field(
        default=None, pattern=r"^[^@\s]+@[a-z0-9-]+\.iam\.gserviceaccount\.com$")
    max_delivery_attempts: int = Field(default=10, ge=5, le=100)  # Pub/Sub's bounds
    env: dict[str, str] = Field(default_factory=dict, description="non-secret LEADSCORE_*")
    sizes: Sizes = Field(default_factory=Sizes)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("schedule must be a five-field cron expression")
        return value

    @field_validator("invoker_members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if not re.match(MEMBER, m)]
        if bad:
            raise ValueError("members look like group:sales-ops@example.com, not: "
                             + ", ".join(bad))
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        bad = [k for k in value if not re.match(r"^LEADSCORE_[A-Z0-9_]+$", k)]
        if bad:
            problems.append(f"env may only set LEADSCORE_* variables: {', '.join(bad)}")
        secret_like = [k for k in value if k.endswith(("_SECRET", "_TOKEN", "_KEY", "_AUTH"))]
        if secret_like:
            problems.append("secrets belong in Secret Manager (--secrets-file), not env: "
                            + ", ".join(secret_like))
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _together(self) -> Self:
        problems = cross_field_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def database_location(self) -> str:
        return locations.firestore_location(self.region, self.firestore_multi_region,
                                            self.firestore_location)

    @property
    def ses_suppression(self) -> bool:
        """Non-openers go to SES's suppression list: the decay job needs AWS credentials."""
        return bool(self.env.get("LEADSCORE_SES_SUPPRESSION_REGION"))


# Email providers whose webhook is checked against a setting besides their secret (the
# registry's `settings` past the first; tests/infra/test_plan_constraints.py keeps this
# table complete): the provider is configured only with both, so a deploy without the
# setting would answer every one of its webhooks 401.
PAIRED_SETTINGS = {
    "ses": ("LEADSCORE_SES_TOPIC_ARNS", "the SNS topic ARNs SES publishes to (else every SES "
            "webhook is 401)"),
    "mandrill": ("LEADSCORE_MANDRILL_WEBHOOK_URL", "the URL Mandrill calls, email_webhook's "
                 "URL + /mandrill (Mandrill signs it, so without it every Mandrill webhook "
                 "is 401)"),
}


def _esp_problems(tools: list[Any], env: dict[str, Any]) -> list[str]:
    """Email tools the scheduled job syncs to, each with the settings it needs beside its
    key: Mailchimp its audience, a removal its list or group (integrations/esp/*.py refuse
    to build a tool without them, so the job would sync nothing to it)."""
    problems = []
    if "mailchimp" in tools and not env.get("LEADSCORE_MAILCHIMP_LIST_ID"):
        problems.append("esp_sync has mailchimp: set env.LEADSCORE_MAILCHIMP_LIST_ID, the "
                        "audience to sync (without it nothing is synced to Mailchimp)")
    if "brevo" in tools and env.get("LEADSCORE_BREVO_REMOVAL", "list") == "list" and not (
            env.get("LEADSCORE_BREVO_NON_OPENER_LIST")):
        problems.append("esp_sync has brevo: its removal LEADSCORE_BREVO_REMOVAL=list (the "
                        "default) needs env.LEADSCORE_BREVO_NON_OPENER_LIST, the list "
                        "non-openers move to (or set LEADSCORE_BREVO_REMOVAL: blocklist)")
    if "sendgrid" in tools and env.get("LEADSCORE_SENDGRID_REMOVAL") == "suppress" and not (
            env.get("LEADSCORE_SENDGRID_SUPPRESSION_GROUP")):
        problems.append("esp_sync has sendgrid: LEADSCORE_SENDGRID_REMOVAL=suppress needs "
                        "env.LEADSCORE_SENDGRID_SUPPRESSION_GROUP, the unsubscribe group id "
                        "(or the default removal, lists)")
    return problems


def cross_field_problems(data: dict[str, Any]) -> list[str]:
    """Checks that span fields; written for raw (possibly invalid) data as well."""
    problems = []
    env = data.get("env") if isinstance(data.get("env"), dict) else {}
    providers = data.get("email_providers", DEFAULT_EMAIL_PROVIDERS)
    for provider, (setting, what) in PAIRED_SETTINGS.items():
        if isinstance(providers, list) and provider in providers and not env.get(setting):
            problems.append(f"email_providers has {provider}: set env.{setting} to {what}")
    tools = data.get("esp_sync")
    if isinstance(tools, list):
        problems += _esp_problems(tools, env)
    if data.get("hubspot") is True and not env.get("LEADSCORE_HUBSPOT_WEBHOOK_URL"):
        problems.append("hubspot is on: set env.LEADSCORE_HUBSPOT_WEBHOOK_URL to the URL "
                        "HubSpot calls, crm_webhook's URL + /hubspot (HubSpot signs it, so "
                        "without it every HubSpot webhook is 401)")
    region = data.get("region")
    if isinstance(region, str) and re.match(REGION, region):
        override = data.get("firestore_location")
        try:
            locations.firestore_location(region, bool(data.get("firestore_multi_region")),
                                         override if isinstance(override, str) else None)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


class ConfigError(Exception):
    pass


def _describe(error: Any) -> list[str]:
    """One line per problem: a validator that found several joined them with '; '."""
    where = ".".join(str(p) for p in error["loc"]) or "(file)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return [f"  {where}: {part}" for part in message.split("; ")]


def load(path: Path | None, overrides: dict[str, str | None]) -> DeployConfig:
    data: dict[str, object] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        lines = [line for e in errors for line in _describe(e)]
        if all(e["loc"] for e in errors):  # field errors stop pydantic before the cross checks
            lines += [f"  (file): {p}" for p in cross_field_problems(data)]
        raise ConfigError(f"invalid deploy configuration ({len(lines)} problems):\n"
                          + "\n".join(lines)) from None
