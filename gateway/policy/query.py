"""A query string as the frameworks behind the gateway read it: its pairs, and the names
a parameter is registered under."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote_plus

# '&', and ';' too: some frameworks split on it.
_PAIRS = re.compile(r"[&;]")


def query_pairs(query_string: str) -> Iterator[tuple[str, str]]:
    """Each pair's name and value, percent- and plus-decoded once (a pair without '='
    has an empty value)."""
    for pair in _PAIRS.split(query_string):
        name, _, value = pair.partition("=")
        yield unquote_plus(name), unquote_plus(value)


def framework_names(name: str) -> set[str]:
    """The names frameworks register a decoded parameter name under, lower-cased: PHP's
    (cut at a NUL, leading spaces dropped, `name[...]` read as `name`, a '.' or an
    unmatched '[' as '_'; PHP's space to '_' cannot make a name that starts with a letter
    or '_' once leading spaces are gone) and qs's (`[name]...` read as `name`), with a
    leading `?` dropped (PHP's built-in server)."""
    name = name.partition("\x00")[0].lstrip("?")
    names = set()
    if name.startswith("[") and "]" in name:
        names.add(name[1 : name.index("]")].lower())
    name = name.lstrip(" ")
    head, bracket, rest = name.partition("[")
    if bracket and "]" in rest:
        name = head
    names.add(name.replace(".", "_").replace("[", "_").lower())
    return names
