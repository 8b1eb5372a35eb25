"""Default factories for pydantic fields that cost nothing when a model class is built.

pydantic asks every `default_factory` for its signature (does it take the validated data?).
The built-in `list` has its signature only as text, which `inspect` tokenizes and parses:
about 0.1 ms a field, and the first such field compiles `tokenize`'s regular expressions,
several ms of every cold start (issue 20). A plain function answers at once and makes the
same new empty list for each instance. `tests/perf/test_import_budget.py` keeps the built-in
out of the models every deployed target loads.
"""

from typing import Any


def empty_list() -> list[Any]:
    return []
