"""Identity headers: spoofed client headers are stripped; claim values cannot inject headers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.config.model import IdentityHeaders
from gateway.errors import ConfigError
from gateway.policy.identity_headers import IdentityHeaderInjector, OwnedHeaders, encode_claim
from gateway.types import Principal

DEFAULTS = IdentityHeaders()


def principal(**claims: Any) -> Principal:
    return Principal(
        kind="bearer", issuer="https://idp", subject="u1", claims=claims,
        scopes=frozenset({"b", "a"}), client_id="svc",
    )  # fmt: skip


STRIPPED = [
    ("X-Auth-Request-User", True),
    ("x-auth-request-user", True),
    ("X-AUTH-REQUEST-EMAIL", True),
    ("x-AuTh-ReQuEsT-Anything", True),
    ("X_Auth_Request_User", True),  # WSGI/CGI upstreams read '_' as '-'
    ("X-Auth-Request-User ", True),
    ("X-Gateway-Identity", True),
    ("X-Forwarded-User", True),
    ("x-remote-user", True),
    ("X-Forwarded-For", False),
    ("X-Auth", False),
    ("Accept", False),
    ("Authorization", False),
]


@pytest.mark.parametrize(("name", "dropped"), STRIPPED)
def test_strip_any_spelling(name: str, dropped: bool) -> None:
    """Configured names and prefixes match whatever the case, '_' or trailing space."""
    injector = IdentityHeaderInjector(DEFAULTS)
    assert injector.strip({name: "spoof"}) == ([name] if dropped else [])


def test_strip_duplicates_from_a_multidict() -> None:
    """Repeated and differently-cased copies are all named, each spelling once."""
    headers = CIMultiDict(
        [("X-Auth-Request-User", "a"), ("x-auth-request-user", "b"), ("X-AUTH-REQUEST-USER", "c"),
         ("Accept", "*/*")]
    )  # fmt: skip
    names = IdentityHeaderInjector(DEFAULTS).strip(headers)
    assert names == ["X-Auth-Request-User", "x-auth-request-user", "X-AUTH-REQUEST-USER"]
    for name in names:
        headers.popall(name, None)
    assert list(headers) == ["Accept"]


def test_route_mapping_strips_its_own_and_the_global_names() -> None:
    """A route's own mapping is built; global names stay stripped too."""
    config = IdentityHeaders(headers={"X-User": "sub"}, strip_prefixes=[])
    injector = IdentityHeaderInjector(config, {"X-Team-Member": "sub"})
    assert injector.strip(["x-user", "X-TEAM-MEMBER", "x-other"]) == ["x-user", "X-TEAM-MEMBER"]
    assert injector.build(principal()) == [("X-Team-Member", "u1")]


def test_build_default_mapping() -> None:
    """sub, e-mail, username and groups go out under the default names."""
    built = IdentityHeaderInjector(DEFAULTS).build(
        principal(sub="u1", email="ada@example.com", preferred_username="ada",
                  groups=["eng", "admins"])
    )  # fmt: skip
    assert built == [
        ("X-Auth-Request-User", "u1"),
        ("X-Auth-Request-Email", "ada@example.com"),
        ("X-Auth-Request-Preferred-Username", "ada"),
        ("X-Auth-Request-Groups", "eng,admins"),
    ]


def test_missing_claims_are_left_out_and_fields_fill_in() -> None:
    """Absent claims send no header; sub, client_id and scope come from the principal."""
    injector = IdentityHeaderInjector(
        IdentityHeaders(headers={"X-Sub": "sub", "X-Client": "client_id", "X-Scopes": "scope",
                                 "X-Mail": "email", "X-Team": "org.team"})
    )  # fmt: skip
    built = injector.build(principal(org={"team": "core"}))
    assert built == [("X-Sub", "u1"), ("X-Client", "svc"), ("X-Scopes", "a b"), ("X-Team", "core")]


ENCODINGS = [
    ("plain", "plain"),
    ("Ada Lovelace", "Ada Lovelace"),
    ("evil\r\nX-Auth-Request-Admin: true", "evil%0D%0AX-Auth-Request-Admin: true"),
    ("tab\there", "tab%09here"),
    ("nul\x00", "nul%00"),
    ("del\x7f", "del%7F"),
    ("Zoë", "Zo%C3%AB"),
    ("日本", "%E6%97%A5%E6%9C%AC"),
    ("100%", "100%25"),
    (" admin ", "%20admin%20"),  # HTTP parsers trim field values: edge spaces are encoded
    ("  ", "%20%20"),
    ([" a", "b "], "%20a,b%20"),
    (["a", "b,c", "d\ne"], "a,b%2Cc,d%0Ae"),
    (["x", 1, True, None], "x,1,true,null"),
    ([], None),
    (None, None),
    (42, "42"),
    (False, "false"),
    ({"k": "v", "n": [1, 2]}, '{"k":"v","n":[1,2]}'),
    ({"k": "é\r\n"}, '{"k":"%C3%A9\\r\\n"}'),  # JSON escapes CR/LF itself
    ("100%~", "100%25~"),  # '~' is printable: kept on the slow path too
    ("\udc80x", "%ED%B2%80x"),  # a lone surrogate (undecodable byte) is encoded, no crash
    (["X,Y", "Z"], "X%2CY,Z"),
    ({"at": Decimal("1.5")}, '{"at":"1.5"}'),  # not JSON-native: sent as text, no crash
]


@pytest.mark.parametrize(("value", "encoded"), ENCODINGS)
def test_encode_claim(value: Any, encoded: str | None) -> None:
    """Controls, non-ASCII and '%' are percent-encoded; lists joined by ','; JSON otherwise."""
    assert encode_claim(value) == encoded


@given(st.text())
def test_encoded_strings_are_safe_and_reversible(text: str) -> None:
    """Any string claim encodes to printable ASCII that decodes back to the claim."""
    encoded = encode_claim(text)
    assert encoded is not None
    assert all(" " <= ch <= "~" for ch in encoded)
    assert encoded == encoded.strip()  # what an HTTP parser keeps is the whole value
    assert unquote(encoded, errors="surrogatepass") == text


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_encoded_lists_split_back(items: list[str]) -> None:
    """List items survive the ',' join: split, then unquote each."""
    encoded = encode_claim(items)
    assert encoded is not None
    assert [unquote(i, errors="surrogatepass") for i in encoded.split(",")] == items


@pytest.mark.parametrize("name", ["Bad Header", "X-User\r\n", "", "X:User", "X-Üser"])
def test_names_that_are_not_header_tokens_are_config_errors(name: str) -> None:
    """An identity header name must be an HTTP token (no spaces, CR/LF, ':' or non-ASCII)."""
    with pytest.raises(ConfigError, match="is not a valid header name"):
        IdentityHeaderInjector(IdentityHeaders(headers={name: "sub"}))


@pytest.mark.parametrize(
    "name",
    [
        "Authorization", "authorization", "Proxy-Authorization", "Cookie", "Host",
        "Content-Length", "Content-Type", "Transfer-Encoding", "TRANSFER-ENCODING",
        "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade",
    ],
)  # fmt: skip
def test_names_the_gateway_controls_are_config_errors(name: str) -> None:
    """A claim may never be sent as a credential (Authorization, Cookie) or as a framing
    header (Content-Length, Transfer-Encoding, ...): request smuggling or impersonation."""
    with pytest.raises(ConfigError, match="would overwrite a header the gateway controls"):
        IdentityHeaderInjector(IdentityHeaders(headers={name: "sub"}))


def test_every_bad_name_is_reported_at_once() -> None:
    """All unusable names are listed in one error, each with its own reason."""
    with pytest.raises(ConfigError) as info:
        IdentityHeaderInjector(
            IdentityHeaders(headers={"Host": "sub", "a b": "sub", "X-Ok": "sub"})
        )
    assert [
        "identity header 'Host' would overwrite a header the gateway controls",
        "identity header 'a b' is not a valid header name",
    ] == info.value.problems


def test_issuer_and_scopes_fill_in_from_the_principal() -> None:
    """iss and scopes come from the principal when the claims lack them; no scopes, no
    header."""
    injector = IdentityHeaderInjector(
        IdentityHeaders(headers={"X-Iss": "iss", "X-Scopes": "scopes"})
    )
    assert [("X-Iss", "https://idp"), ("X-Scopes", "a b")] == injector.build(principal())
    bare = Principal(kind="session", issuer="https://idp", subject="u1", claims={},
                     scopes=frozenset(), client_id=None)  # fmt: skip
    assert [("X-Iss", "https://idp")] == injector.build(bare)


def test_owned_headers_are_stripped_in_every_spelling() -> None:
    """Every copy of an owned header is removed, whatever its spelling; others stay."""
    headers = CIMultiDict(
        [("X-Api-User", "spoof"), ("x_api_user", "spoof"), ("REMOTE-USER", "root"),
         ("X-Forwarded-Prefix", "/admin"), ("Accept", "*/*"), ("X-Api-User", "again")]
    )  # fmt: skip
    OwnedHeaders(["X-Api-User"], []).strip(headers)
    assert [("Accept", "*/*")] == list(headers.items())


def test_owned_headers_cover_every_route_and_every_spelling() -> None:
    """One set for the gateway: any route's identity names, the defaults, any spelling."""
    owned = OwnedHeaders(["X-Api-User"], ["X-Auth-Request-"])
    spoofable = ("X-Api-User", "x_api_user", "X-API-USER ", "Remote-User", "REMOTE_USER",
                 "X-Forwarded-Anything", "X-HTTP-Method-Override", "x_http_method_override",
                 "X-Real-IP", "True-Client-IP", "X-Original-URL",
                 "X-Auth-Request-Email")  # fmt: skip
    for name in spoofable:
        assert owned.owns(name), name
    for name in ("Accept", "Authorization", "X-Api", "Cookie", "X-Request-ID"):
        assert not owned.owns(name), name


def test_identity_headers_follow_changed_claims_of_the_same_caller() -> None:
    """Headers built once per caller are rebuilt when that caller's claims change (a
    refreshed session with a new email never sends the old one upstream)."""
    injector = IdentityHeaderInjector(DEFAULTS)
    first = dict(injector.build(principal(email="old@example.com")))
    again = dict(injector.build(principal(email="old@example.com")))
    changed = dict(injector.build(principal(email="new@example.com")))
    assert first == again
    assert "old@example.com" in first.values()
    assert "new@example.com" in changed.values()
    assert "old@example.com" not in changed.values()
