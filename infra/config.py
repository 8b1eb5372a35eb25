"""The deploy configuration file, validated before anything runs (pydantic)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

EMAIL_PROVIDERS = ("sendgrid", "mailgun", "mailchimp", "postmark", "ses", "brevo")
PURCHASE_PLATFORMS = ("stripe", "shopify", "woocommerce", "generic")


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
    region: str = Field(pattern=r"^[a-z]+-[a-z]+\d$")
    runtime: Literal["python311", "python312", "python313"] = "python312"
    firestore_location: str = "eur3"
    schedule: str = "0 5 * * *"
    time_zone: str = "Etc/UTC"
    email_providers: list[Literal[EMAIL_PROVIDERS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(EMAIL_PROVIDERS))
    purchase_platforms: list[Literal[PURCHASE_PLATFORMS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(PURCHASE_PLATFORMS))
    typeform: bool = True
    tally: bool = False
    captcha: bool = False
    handover_webhooks: bool = False
    env: dict[str, str] = Field(default_factory=dict, description="non-secret LEADSCORE_*")
    sizes: Sizes = Field(default_factory=Sizes)

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if len(self.schedule.split()) != 5:
            raise ValueError("schedule must be a five-field cron expression")
        bad = [k for k in self.env if not re.match(r"^LEADSCORE_[A-Z0-9_]+$", k)]
        if bad:
            raise ValueError(f"env may only set LEADSCORE_* variables: {', '.join(bad)}")
        secret_like = [k for k in self.env if k.endswith(("_SECRET", "_TOKEN", "_KEY", "_AUTH"))]
        if secret_like:
            raise ValueError("secrets belong in Secret Manager, not env: " + ", ".join(
                secret_like))
        return self


class ConfigError(Exception):
    pass


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
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigError("invalid deploy configuration:\n" + "\n".join(lines)) from None
