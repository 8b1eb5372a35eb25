"""The store adapters hold no scoring or orchestration: they import nothing of it."""

from __future__ import annotations

import ast
from pathlib import Path

import leadscore.store

STORE = Path(leadscore.store.__file__).parent
FORBIDDEN = ("leadscore.domain.scoring", "leadscore.domain.handover", "leadscore.domain.effects",
             "leadscore.service")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_store_module_imports_scoring_handover_or_the_service_layer() -> None:
    # GIVEN every module of the store package
    modules = sorted(STORE.glob("*.py"))
    assert {p.name for p in modules} >= {"port.py", "memory.py", "sqlite.py", "firestore.py"}
    # THEN none imports the scoring part of the domain or the service layer
    offending = {p.name: sorted(m for m in imported_modules(p)
                                if m.startswith(FORBIDDEN) or m in ("leadscore",))
                 for p in modules}
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    # GIVEN a module that imports scoring lazily, inside a function
    sample = tmp_path / "bad.py"
    sample.write_text("def f():\n    from leadscore.domain import scoring\n    return scoring\n")
    # THEN the check finds it
    assert "leadscore.domain.scoring" in imported_modules(sample)
