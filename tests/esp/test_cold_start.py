"""The email tools' official clients (the `esp` extra) load on a sync's first call only, so
no function's cold start pays for them (issue 22)."""

from __future__ import annotations

import subprocess
import sys

from fakes.brevo_api import BrevoFake

from esp.conftest import brevo

CLIENTS = ("mailchimp_marketing", "brevo", "sendgrid", "python_http_client", "httpx")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys; {code}; "
             f"print(','.join(c for c in {CLIENTS!r} if c in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return [c for c in done.stdout.strip().split(",") if c]


def test_importing_and_building_the_sync_modules_loads_no_client() -> None:
    # GIVEN the registry's three modules, imported and configured as the decay job does
    code = ("from leadscore.config import Settings; "
            "from leadscore.domain.segments import Segments; "
            "from leadscore.integrations.esp.registry import configured; "
            "configured(Settings(mailchimp_api_key='k-us6', mailchimp_list_id='l', "
            "brevo_api_key='b', brevo_non_opener_list=9, sendgrid_api_key='s'), Segments())")
    # THEN none of the clients is loaded until a call is made
    assert _loaded_after(code) == []


def test_the_first_call_loads_the_client(brevo_api: BrevoFake) -> None:
    # GIVEN a Brevo sync; WHEN its setup runs THEN the SDK is loaded and used
    brevo(brevo_api)
    assert "brevo" in sys.modules and len(brevo_api.requests) >= 2
