"""Cold start budget, in the style of Powertools for AWS Lambda's import-time tests: each
deployed target, imported in a fresh interpreter exactly as Cloud Functions does (load
`main.py`, ask it for the `--entry-point`), loads its own code and stays within a budget of
modules. Times are the benchmark's business (`make bench`); a test checks what is loaded,
which does not depend on how busy the machine is.
"""

from __future__ import annotations
import __future__

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
TARGETS = ("crm_webhook", "dashboard", "email_webhook", "form_submission", "inactivity_decay",
           "ingest", "leads_api", "purchase_webhook", "track")
# Client libraries and tools every target builds lazily, on the request that needs them.
NEVER_AT_IMPORT = ("google.cloud.firestore", "google.cloud.pubsub_v1", "boto3", "botocore",
                   "cryptography", "requests", "rich", "leadscore.store.firestore",
                   "leadscore.store.sqlite", "leadscore.integrations", "leadscore.cli",
                   "leadscore.service.rescore", "leadscore.service.reports",
                   # settings are read without pydantic-settings (and python-dotenv), and the
                   # built-in rules from their JSON twin, so no cold start runs PyYAML
                   "pydantic_settings", "dotenv", "yaml",
                   # email-validator loads with the first address checked (its regexes cost
                   # 15-25 ms), sqlite3 with the embedded store, the handover thread's
                   # concurrent.futures with the first handover, address moves with one,
                   # pycountry with the first country or currency looked up
                   "email_validator", "sqlite3", "concurrent.futures", "leadscore.service.moves",
                   "pycountry", "re2",  # RE2 with the first `matches` rule
                   # internal values are stdlib dataclasses (ARCHITECTURE.md, "Where pydantic
                   # is used"); a pydantic model with one in a field builds a schema for it
                   "pydantic.dataclasses")
# Code only one target's requests use: loaded by that target at its cold start, by no other.
ONLY_FOR = {"leadscore.service.purchases": "purchase_webhook"}
# The dashboard's overview gives each hot lead's reasons as the Slack cards do: it shares their
# presentation code (no client, no network), and nothing else under `leadscore.integrations`.
SHARED_PRESENTATION = {"dashboard": {"leadscore.integrations", "leadscore.integrations.cards",
                                     "leadscore.integrations.ports"}}
# Outside wire formats (marshmallow) come with their provider, which the registry imports on
# first use. `track` reads the Segment spec on every request, plainly when a message is plainly
# valid (leadscore.tracking.message; marshmallow's import alone was ~25 ms of its cold start),
# so no target loads marshmallow at import.
# Every provider module is imported by the registry when its path is first asked for.
PROVIDERS = ("sendgrid", "mailgun", "mailchimp", "postmark", "ses", "brevo", "stripe",
             "shopify", "woocommerce", "generic_purchase", "typeform", "tally")
# Modules a target may add to what functions_framework loads by itself: 98-121 since issue
# 20's third cold-start pass (97-120 after the second, 109-135 before it, 199-220 before the
# first, with pydantic-settings, its dotenv and argparse sources, and PyYAML), 101 for
# `track` (113 with marshmallow, 153 with email-validator and the write path, 238 before the
# first pass). A new heavy library adds dozens and shows up here; the checks above name the
# libraries no target may load at all.
MODULE_BUDGET = 125
# `track` loads no write path at import (an anonymous page view writes none) and no wire
# schema, so its own budget is the tighter one
TRACK_MODULE_BUDGET = 105

PROBE = """
import json, sys
import functions_framework
from functions_framework import _function_registry as registry
before = set(sys.modules)
module, spec = registry.load_function_module(sys.argv[2])
spec.loader.exec_module(module)
getattr(module, sys.argv[1])
print(json.dumps({"before": sorted(before), "after": sorted(sys.modules)}))
"""


def loaded_by(target: str, main: Path = FUNCTIONS / "main.py") -> tuple[set[str], set[str]]:
    """(every module loaded, the ones the target added to the functions-framework's)."""
    done = subprocess.run([sys.executable, "-c", PROBE, target, str(main)], cwd=FUNCTIONS,
                          timeout=120,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    return set(seen["after"]), set(seen["after"]) - set(seen["before"])


def _under(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest) -> tuple[str, set[str], set[str]]:
    return request.param, *loaded_by(request.param)


def test_a_target_loads_no_other_functions_code(target: tuple[str, set[str], set[str]]) -> None:
    # GIVEN a cold interpreter asked for one deployed target
    name, everything, _ = target
    # THEN the other functions' entry modules are not loaded
    assert name in everything
    assert not [other for other in TARGETS if other != name and other in everything]


def test_clients_and_tools_wait_for_the_request_that_needs_them(
        target: tuple[str, set[str], set[str]]) -> None:
    _, everything, _ = target
    name = target[0]
    shared = SHARED_PRESENTATION.get(name, set())
    for package in NEVER_AT_IMPORT:
        assert not [m for m in _under(everything, package) if m not in shared], package
    assert not _under(everything, "marshmallow")
    assert not [m for m in everything
                if m.rsplit(".", 1)[-1] in PROVIDERS and m.startswith("leadscore.providers.")]
    for module, owner in ONLY_FOR.items():
        assert (module in everything) == (name == owner), (module, name)


def test_a_target_stays_within_its_module_budget(
        target: tuple[str, set[str], set[str]]) -> None:
    name, _, added = target
    budget = TRACK_MODULE_BUDGET if name == "track" else MODULE_BUDGET
    assert len(added) <= budget, (name, len(added))


def _models_loaded(modules: set[str]) -> list[tuple[str, type[BaseModel]]]:
    """(module, model class) for each pydantic model defined by a leadscore module loaded."""
    found = []
    for module_name in sorted(m for m in modules if m.startswith("leadscore.")):
        module = importlib.import_module(module_name)
        found += [(module_name, value) for value in vars(module).values()
                  if isinstance(value, type) and issubclass(value, BaseModel)
                  and value.__module__ == module_name]
    return found


def test_the_models_a_target_builds_at_import_keep_their_annotations_real(
        target: tuple[str, set[str], set[str]]) -> None:
    # GIVEN the modules a cold target loads that define pydantic models
    _, everything, _ = target
    defining = {module for module, _ in _models_loaded(everything)}
    assert "leadscore.domain.events" in defining or "leadscore.domain.rules" in defining
    # THEN none turns its annotations into strings: pydantic would compile each one back
    # (a `typing.ForwardRef` a field, about 5 ms of every cold start, issue 20)
    stringified = [m for m in sorted(defining)
                   if getattr(sys.modules[m], "annotations", None) is __future__.annotations]
    assert not stringified


def test_no_model_a_target_builds_at_import_has_its_default_factory_parsed_from_text(
        target: tuple[str, set[str], set[str]]) -> None:
    # GIVEN the pydantic models a cold target builds
    _, everything, _ = target
    models = _models_loaded(everything)
    assert models
    # THEN no field's default factory is a built-in whose signature `inspect` must tokenize
    # and parse (`list`: see leadscore.domain.defaults); pydantic asks every factory for it
    assert list.__text_signature__  # the case this guards exists on this Python
    parsed = [f"{module}.{model.__name__}.{name}" for module, model in models
              for name, field in model.model_fields.items()
              if getattr(field.default_factory, "__text_signature__", None)]
    assert not parsed


def test_the_probe_sees_an_eager_main_py(tmp_path: Path) -> None:
    # GIVEN a main.py that imports every entry point up front (as it used to)
    eager = tmp_path / "main.py"
    eager.write_text("".join(f"from {t} import {t}\n" for t in TARGETS))
    # WHEN one target is asked for
    everything, added = loaded_by("ingest", eager)
    # THEN the probe sees the other functions' code, and the checks above would fail
    assert [t for t in TARGETS if t != "ingest" and t in everything]
    assert len(added) > len(loaded_by("ingest")[1])


FIRST_REQUEST = """
import json, sys
import functions_framework
client = functions_framework.create_app("ingest", sys.argv[1], "http").test_client()
event = {"type": "form_submitted", "email": "ana@example.com", "source": "website",
         "idempotency_key": "demo-1", "occurred_at": "2026-11-20T10:00:00Z",
         "form_kind": "demo_request"}
answer = client.post("/", json=[event], headers={"Authorization": "Bearer t"})
assert answer.status_code == 200, answer.get_data()
print(json.dumps(sorted(sys.modules)))
"""


def test_a_stage_change_with_no_sink_configured_loads_no_integration(tmp_path: Path) -> None:
    # GIVEN a fresh ingest function with no handover sink (no Slack, webhook or topic)
    env = {**os.environ, "LEADSCORE_STORE": "memory", "LEADSCORE_API_TOKEN": "t",
           "LEADSCORE_HOME": str(tmp_path)}
    # WHEN its first request moves a lead into a new stage
    done = subprocess.run([sys.executable, "-c", FIRST_REQUEST, str(FUNCTIONS / "main.py")],
                          cwd=FUNCTIONS, env=env, timeout=120, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"stage changed"' in done.stdout and '"stage_after": "mql"' in done.stdout
    # THEN the handover machinery asked for its sinks without loading any of their code
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not _under(loaded, "leadscore.integrations")
    assert not _under(loaded, "leadscore.service.handover")
    assert "concurrent.futures" not in loaded


ANONYMOUS_PAGE_VIEW = """
import json, sys
import functions_framework
client = functions_framework.create_app("track", sys.argv[1], "http").test_client()
page = {"type": "page", "anonymousId": "a-1", "name": "Pricing", "messageId": "m-1",
        "properties": {"url": "https://www.example.com/pricing"}}
answer = client.post("/v1/p", json=page, headers={"X-Write-Key": "wk"})
assert answer.status_code == 200, answer.get_data()
assert answer.get_json()["accepted"] == 1, answer.get_json()
print(json.dumps(sorted(sys.modules)))
"""


def test_an_anonymous_page_view_loads_no_address_check_no_write_path_and_no_marshmallow(
        tmp_path: Path) -> None:
    # GIVEN a fresh track function
    env = {**os.environ, "LEADSCORE_STORE": "memory", "LEADSCORE_TRACK_SERVER_KEYS": "wk",
           "LEADSCORE_HOME": str(tmp_path)}
    # WHEN its first request is an anonymous page view (no address anywhere)
    done = subprocess.run([sys.executable, "-c", ANONYMOUS_PAGE_VIEW,
                           str(FUNCTIONS / "main.py")], cwd=FUNCTIONS, env=env, timeout=120,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    # THEN it was kept for its visitor without checking an address or scoring a lead
    assert "leadscore.store.memory" in loaded
    assert not _under(loaded, "email_validator")
    # AND its message was read without marshmallow (leadscore.tracking.message)
    assert not _under(loaded, "marshmallow")
    assert "leadscore.service.ingest" not in loaded and "leadscore.domain.scoring" not in loaded


def test_the_anonymous_placeholder_is_an_address_email_validator_accepts_as_is() -> None:
    # GIVEN the placeholder the events skip checking
    from pydantic.networks import validate_email

    from leadscore.domain.events import PLACEHOLDER_EMAIL, FormSubmitted
    from leadscore.domain.visitors import ANONYMOUS

    # THEN email-validator itself accepts it unchanged, so skipping the check changes nothing
    assert ANONYMOUS == PLACEHOLDER_EMAIL == "anonymous@visitor.example"
    assert validate_email(PLACEHOLDER_EMAIL)[1] == PLACEHOLDER_EMAIL
    # AND any other address is still checked
    with pytest.raises(ValidationError):
        FormSubmitted(email="anonymous@visitor", source="s", idempotency_key="k",
                      occurred_at="2026-11-20T10:00:00Z", form_kind="contact")


GC_PROBE = """
import gc, json, sys
import functions_framework
from functions_framework import _function_registry as registry
if sys.argv[2] == "disabled":
    gc.disable()
already = gc.get_freeze_count()  # some runtimes' start-up freezes a few hundred objects
module, spec = registry.load_function_module(sys.argv[1])
spec.loader.exec_module(module)
module.ingest
frozen = gc.get_freeze_count()
module.leads_api  # a second target in the same process (tests, `leadscore serve`)
second = gc.get_freeze_count()
again, spec = registry.load_function_module(sys.argv[1])  # main.py loaded afresh, as
spec.loader.exec_module(again)  # functions_framework.create_app does for every app
again.dashboard
print(json.dumps({"enabled": gc.isenabled(), "frozen": frozen, "already": already,
                  "frozen_after_second": second,
                  "frozen_after_reload": gc.get_freeze_count()}))
"""


@pytest.mark.parametrize("collector", ["enabled", "disabled"])
def test_a_target_import_leaves_the_collector_as_it_found_it_and_its_objects_frozen(
        collector: str) -> None:
    # GIVEN Cloud Functions loading main.py with the garbage collector on (or an embedder
    # that turned it off)
    done = subprocess.run([sys.executable, "-c", GC_PROBE, str(FUNCTIONS / "main.py"),
                           collector], cwd=FUNCTIONS, timeout=120, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # WHEN it asks for a target, then another
    # THEN the collector is as it was, never left paused by the import
    assert seen["enabled"] is (collector == "enabled")
    if collector == "enabled":
        # AND what the first import loaded is frozen (later collections skip it, so no
        # request pays the traversal the import skipped), once: the second target's objects
        # (thousands) are collected as usual
        assert seen["frozen"] - seen["already"] > 50_000
        assert abs(seen["frozen_after_second"] - seen["frozen"]) < 1_000
        # AND main.py loaded again (each app the framework creates) freezes nothing more:
        # a review found each reload froze again, keeping pending garbage for good
        assert abs(seen["frozen_after_reload"] - seen["frozen"]) < 1_000
    else:
        # AND an embedder managing the collector itself gets no freeze either
        assert seen["frozen"] == seen["already"]
