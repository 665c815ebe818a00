"""Bearer parsing (RFC 6750 2.1 only): strict syntax, one header, size cap, no URL tokens."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import BadRequest, InvalidToken
from gateway.tokens.bearer import (
    MAX_TOKEN_HEADER_BYTES,
    MissingToken,
    authorization_scheme,
    one_authorization_header,
    parse_bearer,
    refuse_token_in_query,
)

VALID = [
    ("Bearer abc", "abc"),
    ("bearer abc", "abc"),
    ("BEARER abc", "abc"),
    ("Bearer  abc", "abc"),
    ("Bearer eyJhbGciOi.eyJzdWIi.c2ln", "eyJhbGciOi.eyJzdWIi.c2ln"),
    ("Bearer a-b._~+/c==", "a-b._~+/c=="),
    ("Bearer " + "a" * (MAX_TOKEN_HEADER_BYTES - 7), "a" * (MAX_TOKEN_HEADER_BYTES - 7)),
]


@pytest.mark.parametrize(("header", "token"), VALID)
def test_valid_headers(header: str, token: str) -> None:
    """b64token syntax with a case-insensitive scheme is accepted."""
    assert parse_bearer(header) == token


NO_HEADER = "no Authorization header"
OTHER_SCHEME = "the Authorization header is not of the Bearer scheme"
MISSING = [
    (None, NO_HEADER),
    ("", NO_HEADER),
    ("   ", NO_HEADER),
    ("Basic dXNlcjpwYXNz", OTHER_SCHEME),
    ("Token abc", OTHER_SCHEME),
    ("Bearerabc", OTHER_SCHEME),
]


@pytest.mark.parametrize(("header", "why"), MISSING)
def test_missing_credentials(header: str | None, why: str) -> None:
    """No header, or another scheme: MissingToken (the challenge then has no error code);
    the log says which."""
    with pytest.raises(MissingToken) as info:
        parse_bearer(header)
    assert why == str(info.value)
    assert "An access token is required." == info.value.public_message


MALFORMED = [
    "Bearer",
    "Bearer ",
    "Bearer abc def",
    "Bearer abc,Bearer def",
    "Bearer a=b",
    "Bearer =abc",
    "Bearer abc\r\nX-Evil: 1",
    "Bearer abc\n",
    "Bearer\tabc",
    "Bearer ab\x00c",
    "Bearer ñandú",
    'Bearer "abc"',
    "Bearer " + "a" * MAX_TOKEN_HEADER_BYTES,
]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_headers(header: str) -> None:
    """Anything outside the b64token grammar, or too large, is an invalid token, and the
    caller is told which."""
    with pytest.raises(InvalidToken) as caught:
        parse_bearer(header)
    assert not isinstance(caught.value, MissingToken)
    reason = (
        "The access token is too large."
        if len(header) > MAX_TOKEN_HEADER_BYTES
        else "The Authorization header is not 'Bearer' followed by a token."
    )
    assert (reason, reason) == (str(caught.value), caught.value.public_message)


def test_one_header_only() -> None:
    """Two Authorization headers are refused; one or none pass through."""
    assert one_authorization_header([]) is None
    assert one_authorization_header(["Bearer a"]) == "Bearer a"
    with pytest.raises(InvalidToken) as info:
        one_authorization_header(["Bearer a", "Bearer b"])
    reason = "The request carries more than one Authorization header."
    assert (reason, reason) == (str(info.value), info.value.public_message)


def test_scheme_is_the_first_word_lower_cased() -> None:
    """The scheme a header names decides which parser reads it; no header names none."""
    assert authorization_scheme(None) == ""
    assert authorization_scheme("") == ""
    assert authorization_scheme("  DPoP  abc def") == "dpop"
    assert authorization_scheme("Bearer\tabc") == "bearer"
    assert authorization_scheme("Basic") == "basic"


def test_dpop_scheme_only_where_dpop_is_accepted() -> None:
    """`DPoP <token>` is read only when the caller accepts DPoP; elsewhere it is not a
    bearer credential at all. Other schemes stay missing credentials either way."""
    with pytest.raises(MissingToken, match=r"^the Authorization header is not of the Bearer"):
        parse_bearer("DPoP abc")
    assert parse_bearer("DPoP abc", dpop=True) == "abc"
    assert parse_bearer("dpop  a-b._~+/c==", dpop=True) == "a-b._~+/c=="
    assert parse_bearer("Bearer abc", dpop=True) == "abc"
    for other in ("Basic dXNlcjpwYXNz", "DPoPabc", "Token abc"):
        with pytest.raises(MissingToken, match=r"^the Authorization header is not of the Bearer"):
            parse_bearer(other, dpop=True)
    for header, name in (("DPoP abc def", "DPoP"), ("DPOP a=b", "DPoP"), ("Bearer a b", "Bearer")):
        with pytest.raises(InvalidToken) as caught:
            parse_bearer(header, dpop=True)
        reason = f"The Authorization header is not '{name}' followed by a token."
        assert (reason, reason) == (str(caught.value), caught.value.public_message)


@pytest.mark.parametrize(
    "query",
    ["access_token=abc", "a=1&access_token=abc", "ACCESS_TOKEN=abc", "access%5Ftoken=abc",
     "access_token", "x=1;access_token=2", "%61ccess_token=abc", "access_token=a=b",
     "+access_token+=x"],
)  # fmt: skip
def test_query_token_refused(query: str) -> None:
    """A token in the URL is a bad request, however it is spelled, and says where to put it."""
    with pytest.raises(BadRequest, match=r"^access_token in the query string$") as info:
        refuse_token_in_query(query)
    assert "Send the access token in the Authorization header, not in the URL." == (
        info.value.public_message
    )


@pytest.mark.parametrize("query", ["", "a=1", "token=abc", "my_access_token=1", "access=1"])
def test_other_queries_pass(query: str) -> None:
    """Ordinary query strings are left alone."""
    refuse_token_in_query(query)


@given(st.text(max_size=300))
def test_arbitrary_headers_raise_only_documented_errors(header: str) -> None:
    """Any header string yields a token or InvalidToken, never another exception."""
    try:
        token = parse_bearer(header)
    except InvalidToken:
        return
    assert token
    assert header.lower().startswith("bearer ")


@given(st.text(max_size=300))
def test_arbitrary_queries_raise_only_bad_request(query: str) -> None:
    """Any query string passes or raises BadRequest."""
    with contextlib.suppress(BadRequest):
        refuse_token_in_query(query)


@given(st.lists(st.text(max_size=50), max_size=3))
def test_arbitrary_header_lists(values: list[str]) -> None:
    """Any list of header values yields a token or InvalidToken."""
    with contextlib.suppress(InvalidToken):
        parse_bearer(one_authorization_header(values))
