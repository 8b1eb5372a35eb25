"""The deployment bundle: what Cloud Functions builds, and nothing else.

    main.py and every entry point module (from functions/)
    leadscore/             the package source (no caches)
    requirements.txt       every runtime dependency pinned to the version installed here

No tests, no local databases, no secrets: the bundle is made from an allow-list.
"""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.sqlite*")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements() -> list[str]:
    """leadscore's runtime dependencies and theirs, each `name==installed version`."""
    environment = default_environment()
    pins: dict[str, str] = {}
    visited: set[tuple[str, str]] = set()  # (package, extra): pydantic and pydantic[email]
    pending = [Requirement(r) for r in metadata.requires("leadscore") or []]
    pending = [r for r in pending if not r.marker or r.marker.evaluate({**environment,
                                                                         "extra": ""})]
    while pending:
        requirement = pending.pop()
        name = _canonical(requirement.name)
        wanted = {(name, extra) for extra in [*requirement.extras, ""]}
        if wanted <= visited:
            continue
        visited |= wanted
        pins[name] = metadata.version(requirement.name)
        for extra in [*requirement.extras, ""]:
            for child in metadata.requires(requirement.name) or []:
                parsed = Requirement(child)
                if not parsed.marker or parsed.marker.evaluate({**environment, "extra": extra}):
                    pending.append(parsed)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def build(out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for module in sorted((ROOT / "functions").glob("*.py")):
        shutil.copy2(module, out / module.name)
    shutil.copytree(ROOT / "shared" / "leadscore", out / "leadscore", ignore=SKIP)
    (out / "requirements.txt").write_text("\n".join(pinned_requirements()) + "\n")
    return out
