"""What a newcomer reads must be true (a session-9 audit followed the README literally):
the local server's table and the deploy's URLs name every registered provider, lead ids are
described as they are made, and the files around `make run` agree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from leadscore.catalog import FUNCTIONS
from leadscore.config import default_home
from leadscore.providers.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def section(start: str, end: str) -> str:
    found = README[README.index(start):]
    return found[:found.index(end, len(start))]


def test_the_local_server_table_names_every_function_and_provider() -> None:
    # GIVEN the table of "The local server"
    table = section("| path | what |", "\n\n")
    rows = {line.split("|")[1]: line for line in table.splitlines() if line.startswith("| `")}
    # THEN every function has a row, and each provider is named in its function's row
    for function in FUNCTIONS:
        assert any(f"/{function}" in path for path in rows), function
    for provider in REGISTRY:
        row = next(line for path, line in rows.items() if f"/{provider.function}" in path)
        assert f"`{provider.path.strip('/')}`" in row or provider.path in row, provider.name


def test_the_deploy_lists_the_url_of_every_provider_to_paste() -> None:
    # GIVEN the deploy section's "URLs to paste"
    urls = section("**The URLs to paste**", "\n\n")
    # THEN every registered provider's FUNCTION/PATH is there, and the tracking function
    for provider in REGISTRY:
        assert f"`{provider.function}{provider.path}" in urls, provider.name
    assert "`track`" in urls and "`form_submission`" in urls


def test_lead_ids_are_described_as_keyed_hashes() -> None:
    scoring = section("## Scoring", "**Score = fit + engagement.**")
    assert "SHA-256 of the trimmed" not in scoring
    assert "HMAC" in scoring and "`LEADSCORE_ID_KEY`" in scoring


def test_the_form_answers_without_a_redirect_are_documented() -> None:
    forms = section("## Web forms", "### Typeform")
    assert "`LEADSCORE_FORM_REDIRECT_URLS` unset" in forms and "HTML" in forms
    assert "no rule for form.<kind>" in forms


def test_the_dashboard_tokens_are_not_called_private() -> None:
    example = (ROOT / "infra" / "secrets.example.env").read_text()
    comment = example[:example.index("LEADSCORE_DASHBOARD_TOKENS=")].splitlines()[-2:]
    assert not any("private" in line for line in comment)
    assert any("public" in line and "sign-in" in line for line in comment)


def test_make_run_and_make_clean_agree_with_the_data_folder() -> None:
    # GIVEN what `make run` would run, and what `make clean` removes
    run = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    clean = subprocess.run(["make", "-n", "clean"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout
    # THEN `make run` keeps the default data folder, as default_home's docstring says, and
    # `make clean` removes no folder of data nothing creates
    assert "LEADSCORE_HOME" not in run
    assert ".leadscore/" not in (default_home.__doc__ or "")
    assert not re.search(r"\s\.leadscore(\s|$)", clean)
