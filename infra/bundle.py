"""The deployment bundle: what Cloud Functions builds, and nothing else.

    main.py and every entry point module (from functions/); main.py names every target
                           and imports one only when Cloud Functions asks for it
                           (`--entry-point`), so each function loads its own code alone
    leadscore/             the package source (no caches: Google's Python functions
                           buildpack runs `python3 -m compileall -f -q .` on the source when
                           it builds the image (GoogleCloudPlatform/buildpacks,
                           cmd/python/functions_framework/lib/lib.go), so every instance
                           starts from bytecode compiled for its own runtime, and a cache
                           made here for another Python would only be overwritten)
    requirements.txt       the runtime lock (requirements.lock): every dependency pinned,
                           with its hashes, for every supported Python (a universal lock)

No tests, no local databases, no secrets: the bundle is made from an allow-list. The lock
is made by `make lock` from pyproject.toml's runtime dependencies only (no dev tools), so
the deployed functions run exactly what `make test` installed and tested.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.sqlite*")


class LockMissing(Exception):
    pass


def locked_requirements(lock: Path = LOCK) -> str:
    """The lock, as a requirements.txt pip installs with --require-hashes implied."""
    if not lock.exists():
        raise LockMissing(f"{lock} is missing: run `make lock`")
    header = "# generated from requirements.lock by infra/bundle.py: edit pyproject.toml\n"
    return header + lock.read_text("utf-8")


def lock_digest(lock: Path = LOCK) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:16]


def build(out: Path) -> Path:
    requirements = locked_requirements()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for module in sorted((ROOT / "functions").glob("*.py")):
        shutil.copy2(module, out / module.name)
    shutil.copytree(ROOT / "shared" / "leadscore", out / "leadscore", ignore=SKIP)
    (out / "requirements.txt").write_text(requirements)
    return out
