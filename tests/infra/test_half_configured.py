"""The deploy refuses a provider or email tool turned on without every setting it needs
(a newcomer audit: `email_providers: [mandrill]` without its webhook URL deployed, and every
Mandrill webhook was 401). Derived from the provider registry and the email-tool modules,
so a provider or tool added later is held to the same rule."""

from __future__ import annotations

from typing import Any

import pytest

from infra import config, plan
from leadscore.config import Settings
from leadscore.domain.segments import Segments
from leadscore.errors import ConfigError
from leadscore.integrations.esp.registry import build
from leadscore.providers.registry import REGISTRY

BASE = {"project": "leadscore-demo-42", "region": "europe-west1", "email_providers": [],
        "purchase_platforms": [], "typeform": False}


def enabling(provider: Any) -> dict[str, Any]:
    """The deploy configuration that turns this provider on."""
    if provider.function == "email_webhook":
        return {"email_providers": [provider.name.replace("-", "_")]}
    if provider.function == "purchase_webhook":
        return {"purchase_platforms": [provider.name]}
    if provider.function == "form_submission":
        return {provider.name: True}
    assert provider.name == "hubspot", provider
    return {"hubspot": True}


def variable(setting: str) -> str:
    return f"LEADSCORE_{setting.upper()}"


def env_settings(provider: Any) -> list[str]:
    """The provider's settings the deploy does not bind as secrets: they come from `env`."""
    deployed = config.DeployConfig.model_construct(**{**BASE, **enabling(provider)})
    bound = {s for f in plan.functions(deployed) if f.name == provider.function
             for s in f.secrets}
    return [s for s in provider.settings if s not in bound]


@pytest.mark.parametrize("provider", list(REGISTRY), ids=lambda p: p.name)
def test_a_provider_without_a_setting_it_needs_is_refused(provider: Any) -> None:
    # GIVEN a provider turned on, with every secret bound but one of its other settings
    # missing from env
    needed = env_settings(provider)
    for missing in needed:
        env = {variable(s): "x" for s in needed if s != missing}
        # WHEN the configuration is loaded THEN it is refused, naming the setting
        with pytest.raises(config.ConfigError) as refused:
            config.load(None, {**BASE, **enabling(provider), "env": env})  # type: ignore[dict-item]
        assert variable(missing) in str(refused.value)
    # AND with all of them it is accepted
    config.load(None, {**BASE, **enabling(provider),  # type: ignore[dict-item]
                       "env": {variable(s): "x" for s in needed}})


def test_mandrill_needs_its_webhook_url() -> None:
    # GIVEN Mandrill turned on without its URL (its signature covers the URL)
    with pytest.raises(config.ConfigError) as refused:
        config.load(None, {**BASE, "email_providers": ["mandrill"]})  # type: ignore[dict-item]
    # THEN the deploy stops, naming the setting
    assert "LEADSCORE_MANDRILL_WEBHOOK_URL" in str(refused.value)


def test_every_email_provider_of_the_registry_can_be_deployed() -> None:
    names = {p.name.replace("-", "_") for p in REGISTRY if p.function == "email_webhook"}
    assert names == set(config.EMAIL_PROVIDERS)


TOOL_KEYS = {"mailchimp": "mailchimp_api_key", "brevo": "brevo_api_key",
             "sendgrid": "sendgrid_api_key"}
TOOL_ENVS = [
    ("mailchimp", {}), ("mailchimp", {"LEADSCORE_MAILCHIMP_LIST_ID": "a1b2"}),
    ("brevo", {}), ("brevo", {"LEADSCORE_BREVO_NON_OPENER_LIST": "7"}),
    ("brevo", {"LEADSCORE_BREVO_REMOVAL": "blocklist"}),
    ("brevo", {"LEADSCORE_BREVO_REMOVAL": "list", "LEADSCORE_BREVO_NON_OPENER_LIST": "7"}),
    ("sendgrid", {}), ("sendgrid", {"LEADSCORE_SENDGRID_REMOVAL": "suppress"}),
    ("sendgrid", {"LEADSCORE_SENDGRID_REMOVAL": "suppress",
                  "LEADSCORE_SENDGRID_SUPPRESSION_GROUP": "12"}),
]


@pytest.mark.parametrize(("tool", "env"), TOOL_ENVS)
def test_the_deploy_refuses_an_email_tool_the_job_could_not_build(
        tool: str, env: dict[str, str]) -> None:
    # GIVEN an email tool's non-secret settings, and its key (a secret the deploy binds)
    settings = Settings(**{TOOL_KEYS[tool]: "key"},
                        **{k.removeprefix("LEADSCORE_").lower(): v for k, v in env.items()})
    try:
        usable = build(tool, settings, Segments()) is not None
    except ConfigError:
        usable = False
    # WHEN the deploy configuration syncs to it THEN it is refused exactly when the
    # scheduled job could not sync to it, and accepted otherwise
    change = {**BASE, "esp_sync": [tool], "env": env}
    if usable:
        config.load(None, change)  # type: ignore[arg-type]
    else:
        with pytest.raises(config.ConfigError, match=f"esp_sync has {tool}"):
            config.load(None, change)  # type: ignore[arg-type]
