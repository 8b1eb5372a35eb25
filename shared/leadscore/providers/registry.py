"""Every provider, one line each: which function and path serve it, and its module.

A module is imported only when its path is first asked for, so a cold start of
`purchase_webhook` never imports SendGrid's or SES's module (and their modules import
`cryptography` / `boto3` only inside the calls that need them). Adding a provider: write
`providers/<name>.py` with a `PROVIDER` object, then add one `_line(...)` below.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leadscore.errors import ConfigError
from leadscore.providers.signing import secrets as split_secrets

if TYPE_CHECKING:
    from leadscore.config import Settings
    from leadscore.providers.base import Provider


@dataclass(frozen=True)
class _Line:
    function: str
    path: str
    module: str


_LINES = (
    _Line("email_webhook", "/sendgrid", "leadscore.providers.sendgrid"),
    _Line("email_webhook", "/mailgun", "leadscore.providers.mailgun"),
    _Line("email_webhook", "/mailchimp", "leadscore.providers.mailchimp"),
    _Line("email_webhook", "/postmark", "leadscore.providers.postmark"),
    _Line("email_webhook", "/ses", "leadscore.providers.ses"),
    _Line("email_webhook", "/brevo", "leadscore.providers.brevo"),
    _Line("email_webhook", "/mandrill", "leadscore.providers.mandrill"),
    _Line("email_webhook", "/mailjet", "leadscore.providers.mailjet"),
    _Line("email_webhook", "/ses-eventbridge", "leadscore.providers.ses_eventbridge"),
    _Line("email_webhook", "/sparkpost", "leadscore.providers.sparkpost"),
    _Line("email_webhook", "/resend", "leadscore.providers.resend"),
    _Line("purchase_webhook", "/stripe", "leadscore.providers.stripe"),
    _Line("purchase_webhook", "/shopify", "leadscore.providers.shopify"),
    _Line("purchase_webhook", "/woocommerce", "leadscore.providers.woocommerce"),
    _Line("purchase_webhook", "/generic", "leadscore.providers.generic_purchase"),
    _Line("form_submission", "/typeform", "leadscore.providers.typeform"),
    _Line("form_submission", "/tally", "leadscore.providers.tally"),
    _Line("crm_webhook", "/hubspot", "leadscore.providers.hubspot"),
)


def _path(path: str) -> str:
    return "/" + path.strip("/")


def setting_text(settings: Settings, name: str) -> str:
    """A setting's value as text (secrets revealed only to the caller, never printed)."""
    value: Any = getattr(settings, name)
    if hasattr(value, "get_secret_value"):
        return str(value.get_secret_value())
    if isinstance(value, dict):
        return "set" if value else ""
    return "" if value is None else str(value)


class Registry:
    """Providers by (function, path). Lines name a module; objects can also be added whole."""

    def __init__(self, lines: tuple[_Line, ...] = ()) -> None:
        self._modules = {(line.function, _path(line.path)): line.module for line in lines}
        self._loaded: dict[tuple[str, str], Provider] = {}
        self._lock = threading.Lock()

    def add(self, provider: Provider) -> None:
        """Register an object directly (a test's throw-away provider, a plug-in)."""
        with self._lock:
            self._loaded[(provider.function, _path(provider.path))] = provider

    def remove(self, function: str, path: str) -> None:
        with self._lock:
            self._loaded.pop((function, _path(path)), None)
            self._modules.pop((function, _path(path)), None)

    def _load(self, key: tuple[str, str]) -> Provider:
        module = importlib.import_module(self._modules[key])
        provider: Provider = module.PROVIDER
        if (provider.function, _path(provider.path)) != key:
            raise ConfigError(f"{module.__name__}.PROVIDER serves {provider.function}"
                              f"{provider.path}, but is registered at {key[0]}{key[1]}")
        return provider

    def lookup(self, function: str, path: str) -> Provider | None:
        key = (function, _path(path))
        with self._lock:
            found = self._loaded.get(key)
        if found is None and key in self._modules:
            found = self._load(key)
            with self._lock:
                self._loaded.setdefault(key, found)
        return found

    def paths(self, function: str) -> list[str]:
        """The registered paths of one function, in registration order (loads nothing)."""
        keys = list(self._modules) + [k for k in self._loaded if k not in self._modules]
        return [path for fn, path in keys if fn == function]

    def __iter__(self) -> Iterator[Provider]:
        """Every provider (imports every module: for listings, not for requests)."""
        keys = list(self._modules) + [k for k in self._loaded if k not in self._modules]
        for function, path in keys:
            found = self.lookup(function, path)
            if found is not None:
                yield found

    def secrets(self, provider: Provider, settings: Settings) -> list[str]:
        """The active secrets: the comma-separated values of the provider's first setting."""
        if not provider.settings:
            return []
        return split_secrets(setting_text(settings, provider.settings[0]))

    def configured(self, provider: Provider, settings: Settings) -> bool:
        return all(setting_text(settings, name).strip() for name in provider.settings)

    def describe(self, settings: Settings) -> list[dict[str, Any]]:
        """Name, route, setting names and whether configured: never a secret's value."""
        return [{"name": p.name, "function": p.function, "path": p.path,
                 "settings": [f"LEADSCORE_{s.upper()}" for s in p.settings],
                 "configured": self.configured(p, settings)} for p in self]


REGISTRY = Registry(_LINES)
