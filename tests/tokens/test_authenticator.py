"""BearerAuthenticator routing (local JWT vs introspection) and RFC 6750 challenges."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.config.model import Bearer, Introspection, TrustedIssuer
from gateway.errors import (
    BadRequest,
    GatewayError,
    InsufficientScope,
    InvalidToken,
    ProviderUnavailable,
)
from gateway.tokens.authenticator import (
    BearerAuthenticator,
    principal_from_claims,
    trusted_issuer_problems,
    www_authenticate,
)
from gateway.tokens.bearer import MissingToken
from tests.idp.fake_provider import FakeProvider, ServerFactory, rsa_key, start_fake_provider


def issuer(fake: FakeProvider, mode: str | None = None) -> TrustedIssuer:
    introspection = (
        Introspection(client_id="rs", client_secret="rs-secret", mode=mode) if mode else None
    )
    return TrustedIssuer(
        issuer=fake.issuer, audiences=["api://orders"], allow_insecure_http=True,
        allow_private_network=True, introspection=introspection,
    )  # fmt: skip


def live(**claims: Any) -> dict[str, Any]:
    return {"active": True, "sub": "u", "aud": "api://orders", "exp": int(time.time()) + 60,
            **claims}  # fmt: skip


async def test_jwt_of_an_all_mode_issuer_is_introspected(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """introspection.mode 'all' sends JWTs to the endpoint too; the JWKS is never read."""
    token = rsa_key("k1").sign(fake_provider.token_claims())
    fake_provider.introspection[token] = live(sub="from-introspection")
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "all")]), http_session)
    principal = await auth.authenticate(f"Bearer {token}", "")
    assert principal.subject == "from-introspection"
    assert fake_provider.hits["/jwks"] == 0


async def test_jwt_of_an_opaque_mode_issuer_is_checked_locally(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """With mode 'opaque', JWTs are validated with the JWKS, without introspection."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session)
    await auth.authenticate(f"Bearer {key.sign(fake_provider.token_claims())}", "")
    assert fake_provider.hits["/introspect"] == 0


async def test_opaque_token_without_introspection_is_refused(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """No issuer can introspect: an opaque token is simply invalid."""
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider)]), http_session)
    with pytest.raises(InvalidToken, match="malformed"):
        await auth.authenticate("Bearer opaque", "")


def test_only_one_issuer_may_receive_opaque_tokens() -> None:
    """Two opaque introspectors would see each other's tokens: a config error naming both."""
    with pytest.raises(ValidationError, match=r"introspection\.opaque: false"):
        Bearer.model_validate(
            {"issuers": [
                {"issuer": f"https://idp{n}.example", "audiences": ["api"],
                 "introspection": {"client_id": "rs", "client_secret": "s"}}
                for n in (1, 2)
            ]}
        )  # fmt: skip


async def test_opaque_tokens_go_only_to_the_designated_issuer(
    aiohttp_server: ServerFactory, http_session: aiohttp.ClientSession
) -> None:
    """An issuer with introspection.opaque: false never sees an opaque token."""
    jwt_issuer, opaque_issuer = (
        await start_fake_provider(aiohttp_server),
        await start_fake_provider(aiohttp_server),
    )
    opaque_issuer.introspection["t"] = live(sub="known")
    quiet = issuer(jwt_issuer, "all")
    assert quiet.introspection is not None
    quiet = quiet.model_copy(
        update={"introspection": quiet.introspection.model_copy(update={"opaque": False})}
    )
    config = Bearer(issuers=[quiet, issuer(opaque_issuer, "opaque")])
    principal = await BearerAuthenticator(config, http_session).authenticate("Bearer t", "")
    assert (principal.issuer, principal.subject) == (opaque_issuer.issuer, "known")
    assert jwt_issuer.hits["/introspect"] == 0
    opaque_issuer.failing.add("/introspect")
    with pytest.raises(ProviderUnavailable):  # its outage is a 503, not a 401
        await BearerAuthenticator(config, http_session).authenticate("Bearer u", "")


REQUEST_ERRORS = [
    (None, "", MissingToken),
    ([], "", MissingToken),
    (["Bearer a", "Bearer b"], "", InvalidToken),
    ("Bearer a", "access_token=a", BadRequest),
    ("Basic dTpw", "", MissingToken),
    ("Bearer a.b.c", "", InvalidToken),
]


@pytest.mark.parametrize(("header", "query", "error"), REQUEST_ERRORS)
async def test_request_errors(
    fake_provider: FakeProvider,
    http_session: aiohttp.ClientSession,
    header: Any,
    query: str,
    error: type[Exception],
) -> None:
    """Missing, duplicated, URL-borne or malformed tokens are refused before any call."""
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider)]), http_session)
    with pytest.raises(error):
        await auth.authenticate(header, query)
    assert sum(fake_provider.hits.values()) == 0


PRINCIPALS = [
    ({"sub": "u", "scope": "a b"}, ("u", None, {"a", "b"})),
    ({"sub": "u", "scp": "a b", "azp": "spa"}, ("u", "spa", {"a", "b"})),
    ({"client_id": "svc", "scope": ""}, ("svc", "svc", set())),
    ({"sub": "", "client_id": "svc"}, ("svc", "svc", set())),
    ({"sub": "u", "scp": ["x", 3]}, ("u", None, {"x"})),
]


@pytest.mark.parametrize(("claims", "expected"), PRINCIPALS)
def test_principal_from_claims(claims: dict[str, Any], expected: tuple[Any, ...]) -> None:
    """Subject falls back to the client (client credentials); scopes from scope or scp."""
    principal = principal_from_claims("https://idp", claims)
    assert (principal.subject, principal.client_id, set(principal.scopes)) == expected


CHALLENGES: list[tuple[GatewayError, str, str]] = [
    (MissingToken("none"), "gw", 'Bearer realm="gw"'),
    (
        InvalidToken("x", public="The access token has expired."),
        "gw",
        'Bearer realm="gw", error="invalid_token", '
        'error_description="The access token has expired."',
    ),
    (
        InsufficientScope("needs orders:write", scope="orders:write"),
        "gw",
        'Bearer realm="gw", error="insufficient_scope", '
        'error_description="needs orders:write", scope="orders:write"',
    ),
    (
        BadRequest("q", public="No tokens in URLs."),
        "gw",
        'Bearer realm="gw", error="invalid_request", error_description="No tokens in URLs."',
    ),
    (
        InvalidToken("x", public='Bad "quote" \\ and\r\nX-Injected: 1 ünïcode'),
        'r"e\nalm',
        'Bearer realm="realm", error="invalid_token", '
        'error_description="Bad quote  andX-Injected: 1 ncode"',
    ),
    (ProviderUnavailable("down"), "gw", 'Bearer realm="gw"'),
]


@pytest.mark.parametrize(("error", "realm", "header"), CHALLENGES)
def test_www_authenticate(error: GatewayError, realm: str, header: str) -> None:
    """RFC 6750 3: error codes per case; quotes, backslashes, controls, non-ASCII dropped."""
    assert www_authenticate(error, realm) == header


async def test_malformed_jwt_is_never_sent_to_introspection(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A JWT-shaped token that does not parse is refused, not treated as opaque."""
    header = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":7}').rstrip(b"=").decode()
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session)
    with pytest.raises(InvalidToken, match="malformed"):
        await auth.authenticate(f"Bearer {header}.e30.c2ln", "")
    assert fake_provider.hits["/introspect"] == 0


ISSUER_PROBLEMS = [
    ({"discovery": False}, ["give jwks_uri or introspection"]),
    ({"discovery": False, "jwks_uri": "https://idp/jwks"}, []),
    ({"discovery": False, "introspection": {"client_id": "rs", "client_secret": "s"}},
     ["introspection needs an endpoint"]),
    ({"introspection": {"client_id": "rs"}}, ["needs client_secret"]),
    ({"introspection": {"client_id": "rs", "auth_method": "private_key_jwt"}},
     ["needs private_key_file"]),
    ({"algorithms": ["RS256", "HS256"]}, ["never accepted"]),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "expected"), ISSUER_PROBLEMS)
def test_trusted_issuer_problems(settings: dict[str, Any], expected: list[str]) -> None:
    """Unusable issuer entries are caught at start-up with a sentence each."""
    config = TrustedIssuer(issuer="https://idp", audiences=["api"], **settings)
    problems = trusted_issuer_problems(config)
    assert len(problems) == len(expected), problems
    for fragment, problem in zip(expected, problems, strict=True):
        assert fragment in problem


def b64json(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
HEADERS = st.dictionaries(
    st.sampled_from(["alg", "kid", "typ", "crit", "jku", "x5u", "jwk", "b64"]),
    st.sampled_from(["RS256", "ES256", "HS256", "none", "at+jwt", "b64"]) | JSON_VALUES,
)
PAYLOADS = st.dictionaries(
    st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "sub", "scope"]),
    st.just("https://trusted.example") | JSON_VALUES,
)
JWT_LIKE = st.builds(
    lambda h, p, s: f"Bearer {b64json(h)}.{b64json(p)}.{s}",
    HEADERS,
    PAYLOADS,
    st.text(alphabet="abcXYZ019-_", max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=200), st.just("Bearer ").map(lambda b: b + "x" * 10), JWT_LIKE))
def test_arbitrary_headers_give_only_documented_errors(header: str) -> None:
    """Arbitrary headers and forged JWTs end in a principal-free 401/400/503, nothing else."""
    trusted = TrustedIssuer(
        issuer="https://trusted.example", audiences=["api"], discovery=False,
        jwks_uri="http://127.0.0.1:9/jwks", allow_insecure_http=True, allow_private_network=True,
    )  # fmt: skip

    async def attempt() -> None:
        async with aiohttp.ClientSession() as session:
            auth = BearerAuthenticator(Bearer(issuers=[trusted]), session)
            with contextlib.suppress(InvalidToken, BadRequest, ProviderUnavailable):
                await auth.authenticate(header, "")
                raise AssertionError("a forged token was accepted")

    asyncio.run(attempt())
