"""The README is the front door: what it shows must be true."""

from __future__ import annotations

import re
from pathlib import Path

from leadscore.catalog import FUNCTIONS
from leadscore.config import Settings
from leadscore.domain.rules import default_rules_text

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_shows_the_built_in_rules_verbatim() -> None:
    assert "```yaml\n" + default_rules_text() + "```" in README


def test_the_readme_documents_every_setting_and_function() -> None:
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias or f"LEADSCORE_{name.upper()}"
        assert f"`{variable}`" in README, variable
    for name in FUNCTIONS:
        assert f"/{name}" in README


def test_every_test_the_guarantees_name_exists() -> None:
    root = Path(__file__).resolve().parents[2]
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", README)
    assert len(named) >= 8
    for path, test in named:
        source = (root / path).read_text()
        assert not test or f"def {test}(" in source, f"{path}::{test}"
