"""A query string as frameworks read it: pairs, decoded once, and the names a parameter
is registered under."""

from __future__ import annotations

import pytest

from gateway.policy.query import framework_names, query_pairs


def test_pairs_split_on_ampersand_and_semicolon_and_decode_once() -> None:
    assert [("a", "1"), ("b c", "x y"), ("_method", "%41"), ("flag", ""), ("k", "v=w")] == list(
        query_pairs("a=1;b+c=x%20y&%5Fmethod=%2541&flag&k=v=w")
    )


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("_method", {"_method"}),
        ("_METHOD", {"_method"}),
        (".method", {"_method"}),  # PHP: a '.' is '_'
        ("[method", {"_method"}),  # PHP: an unmatched '[' is '_'
        ("_method[", {"_method_"}),
        ("_method[]", {"_method"}),  # PHP and qs nest it
        ("_method[a][b]", {"_method"}),
        ("  _method", {"_method"}),  # PHP drops leading spaces
        ("\t_method", {"\t_method"}),  # only spaces
        ("_method\x00x", {"_method"}),  # PHP cuts a name at a NUL
        ("?_method", {"_method"}),  # PHP's built-in server drops a stray '?'
        ("[_method]", {"_method", ""}),  # qs reads the bracketed name; PHP, none
        ("[_method][0]", {"_method", ""}),
        ("[x]", {"x", ""}),
        ("X_method", {"x_method"}),
        ("method", {"method"}),
    ],
)
def test_framework_names(name: str, names: set[str]) -> None:
    assert names == framework_names(name)
