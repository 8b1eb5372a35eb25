"""Reading a rules file's text: a key given twice in one mapping is an error.

PyYAML's `safe_load` (and `json.loads`) keep the last of two equal keys, so a second
`engagement: email.opened` or a second `fit:` section silently replaced the first, and a
rules check passed a file that did not say what its author read. YAML's merge keys (`<<`)
still override as YAML specifies: only keys written twice in one mapping are refused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def unique_key_loader() -> type[Any]:
    """PyYAML's SafeLoader refusing duplicate keys with their line (built on first use:
    PyYAML is imported only for a YAML rules file, never at a cold start)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode,
                              deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"duplicate key {key!r} (line {key_node.start_mark.line + 1}): the "
                        "second would silently replace the first", key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s object hook refusing a key given twice in one object."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}: the second would silently replace "
                             "the first")
        out[key] = value
    return out
