"""Default factories for pydantic fields that cost nothing when a model class is built.

pydantic asks every `default_factory` for its signature (does it take the validated data?).
The built-in `list` (and `set` from Python 3.13) has its signature only as text, which
`inspect` tokenizes and parses: about 0.1 ms a field, and the first such field compiles
`tokenize`'s regular expressions, several ms of every cold start (issue 20). A plain function
answers at once and makes the same new empty collection for each instance.
`tests/perf/test_import_budget.py` keeps such built-ins out of the models every deployed
target loads.
"""

from typing import Any


def empty_list() -> list[Any]:
    return []


def empty_set() -> set[Any]:
    return set()
