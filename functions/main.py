"""Cloud Functions loads this file for every target: it names every entry point by its
deployed name, and imports a target's module only when that target is asked for (PEP 562),
so each deployed function loads its own code at cold start and no other function's."""

from __future__ import annotations

import gc
import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

# leadscore uses no pydantic plugins; without this pydantic scans every installed package's
# entry points for them when the first model is built (about 4 ms of each cold start). An
# operator who sets the variable keeps their value (pydantic documents it).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from leadscore.wsgi_guard import install as guard_bodies

if TYPE_CHECKING:  # for readers and type checkers; at run time `__getattr__` imports them
    from crm_webhook import crm_webhook
    from dashboard import dashboard
    from email_webhook import email_webhook
    from form_submission import form_submission
    from inactivity_decay import inactivity_decay
    from ingest import ingest
    from leads_api import leads_api
    from purchase_webhook import purchase_webhook
    from track import track

# deployed name -> the module (beside this file) that defines it
TARGETS = {
    "crm_webhook": "crm_webhook",
    "dashboard": "dashboard",
    "email_webhook": "email_webhook",
    "form_submission": "form_submission",
    "inactivity_decay": "inactivity_decay",
    "ingest": "ingest",
    "leads_api": "leads_api",
    "purchase_webhook": "purchase_webhook",
    "track": "track",
}

__all__ = ["crm_webhook", "dashboard", "email_webhook", "form_submission", "inactivity_decay",
           "ingest", "leads_api", "purchase_webhook", "track"]


def __getattr__(name: str) -> Any:
    module = TARGETS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_import_without_collecting(module), name)


def _import_without_collecting(module: str) -> Any:
    """Import a target's module with the cyclic garbage collector paused, then freeze what
    is loaded (issue 20). An import allocates some 90,000 long-lived objects (modules,
    classes, pydantic's validators) and almost no garbage, so the ~180 collections it
    triggered only traversed them (about 15 M of `ingest`'s ~1,900 M instructions).
    `gc.freeze` moves everything then alive into the permanent generation, which later
    collections skip: no request pays for traversing the import's objects instead, and a
    full collection while serving traverses only what requests keep (the Python
    documentation's disable-early, freeze pattern for pre-loading servers). The import's
    few garbage cycles (about 150 objects) stay. Only the process's first target import
    freezes: the framework loads `main.py` afresh for every app it creates (a test process,
    `leadscore serve`), so whether a target was imported before is read from `sys.modules`,
    which lives as long as the process; a module flag here would be new each time, and each
    freeze would keep whatever garbage was pending for good."""
    if not gc.isenabled() or any(m in sys.modules for m in TARGETS.values()):
        return import_module(module)  # an embedder that manages the collector keeps it
    gc.disable()
    try:
        return import_module(module)
    finally:
        gc.freeze()
        gc.enable()


def __dir__() -> list[str]:
    return sorted(__all__)


guard_bodies()  # oversized bodies refused before the framework reads them
