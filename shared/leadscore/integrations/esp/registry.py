"""The email tools leadscore syncs to, one module each, like the providers' registry.

Each module exposes `from_settings(settings, segments) -> EspSync | None` (None: its key
is not set). Modules are imported only when a tool is asked for, so no function's cold
start pays for a tool it does not use.
"""

from __future__ import annotations

import importlib
from typing import Any

from leadscore.domain.segments import Segments
from leadscore.integrations.esp.port import EspSync

MODULES = {
    "mailchimp": "leadscore.integrations.esp.mailchimp",
    "brevo": "leadscore.integrations.esp.brevo",
    "sendgrid": "leadscore.integrations.esp.sendgrid_mc",
}


def build(tool: str, settings: Any, segments: Segments) -> EspSync | None:
    if tool not in MODULES:
        raise KeyError(f"unknown email tool {tool!r}; known: {', '.join(MODULES)}")
    module = importlib.import_module(MODULES[tool])
    built: EspSync | None = module.from_settings(settings, segments)
    return built


def configured(settings: Any, segments: Segments) -> list[EspSync]:
    """Every tool whose key is set, in the registry's order."""
    return [esp for tool in MODULES if (esp := build(tool, settings, segments)) is not None]
