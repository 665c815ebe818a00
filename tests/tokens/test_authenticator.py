"""BearerAuthenticator routing (local JWT vs introspection) and RFC 6750 challenges."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any, cast

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway import metrics, tracing
from gateway.config.model import Bearer, ClaimPaths, Dpop, Introspection, Tracing, TrustedIssuer
from gateway.crypto import KeyRing
from gateway.errors import (
    BadRequest,
    ConfigError,
    DpopRefused,
    GatewayError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidToken,
    ProviderUnavailable,
)
from gateway.secret import Secret
from gateway.sessions.memory import MemoryStore
from gateway.sessions.shared import SharedState
from gateway.tokens.authenticator import (
    BearerAuthenticator,
    principal_from_claims,
    trusted_issuer_problems,
    www_authenticate,
)
from gateway.tokens.bearer import MissingToken
from tests.idp.fake_provider import (
    FakeClock,
    FakeProvider,
    ServerFactory,
    rsa_key,
    start_fake_provider,
)
from tests.support.dpop import DpopKey


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
    with pytest.raises(InvalidToken, match=r"^The access token is malformed\.$"):
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
    with pytest.raises(ProviderUnavailable, match="answered HTTP 500"):  # a 503, not a 401
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
    (
        InvalidToken("x", public="Tilde ~ kept"),
        "gw",
        'Bearer realm="gw", error="invalid_token", error_description="Tilde ~ kept"',
    ),
    (
        InsufficientUserAuthentication("step up", acr_values=["mfa", "phr"], max_age=300),
        "gw",
        'Bearer realm="gw", error="insufficient_user_authentication", '
        'error_description="A stronger or more recent sign-in is required for this resource.", '
        'acr_values="mfa phr", max_age="300"',
    ),
    (
        InsufficientUserAuthentication("step up", acr_values=[], max_age=None),
        "gw",
        'Bearer realm="gw", error="insufficient_user_authentication", '
        'error_description="A stronger or more recent sign-in is required for this resource."',
    ),
    (
        InsufficientUserAuthentication("step up", acr_values=[], max_age=0),
        "gw",
        'Bearer realm="gw", error="insufficient_user_authentication", '
        'error_description="A stronger or more recent sign-in is required for this resource.", '
        'max_age="0"',
    ),
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
        assert problem.startswith("bearer issuer 'https://idp': ")
        assert fragment in problem
    if problems:
        with pytest.raises(ConfigError) as caught:
            # Refused before any connection is made: no session is needed.
            BearerAuthenticator(Bearer(issuers=[config]), cast(aiohttp.ClientSession, None))
        assert problems == caught.value.problems


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


def outcomes() -> dict[str, float]:
    """The bearer authentication counters, by outcome."""
    return {
        outcome: metrics.REGISTRY.get_sample_value(
            "gateway_authentications_total", {"kind": "bearer", "outcome": outcome}
        )
        or 0.0
        for outcome in ("ok", "missing", "invalid", "unavailable")
    }


def hits() -> float:
    sample = metrics.REGISTRY.get_sample_value(
        "gateway_introspection_cache_total", {"result": "hit"}
    )
    return sample or 0.0


async def test_each_outcome_is_counted_once_under_its_own_name(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """An operator's dashboard sees ok, missing, invalid and unavailable bearer requests,
    each counted once under its own outcome."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session)
    token = key.sign(fake_provider.token_claims())
    cases: list[tuple[str | None, str]] = [
        (f"Bearer {token}", "ok"),
        (None, "missing"),
        ("Bearer opaque-unknown", "invalid"),
    ]
    for header, outcome in cases:
        before = outcomes()
        with contextlib.suppress(GatewayError):
            await auth.authenticate(header, "")
        after = outcomes()
        assert {o: after[o] - before[o] for o in after} == {
            o: (1.0 if o == outcome else 0.0) for o in after
        }, outcome
    fake_provider.failing.add("/introspect")
    before = outcomes()
    with pytest.raises(ProviderUnavailable, match="answered HTTP 500"):
        await auth.authenticate("Bearer other-opaque", "")
    assert 1.0 == outcomes()["unavailable"] - before["unavailable"]


async def test_an_accepted_token_is_served_from_memory_with_its_principal(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A token accepted once gives the same principal again without another call; an
    introspected one counts as a cache hit, a local JWT does not."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    fake_provider.introspection["opaque-1"] = live(sub="from-introspection", scope="a")
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session)
    first = await auth.authenticate("Bearer opaque-1", "")
    calls, before = fake_provider.hits["/introspect"], hits()
    again = await auth.authenticate("Bearer opaque-1", "")
    assert (again.subject, again.kind, again.issuer) == ("from-introspection", "bearer",
                                                         fake_provider.issuer)  # fmt: skip
    assert first == again
    assert calls == fake_provider.hits["/introspect"]
    assert 1.0 == hits() - before
    token = key.sign(fake_provider.token_claims())
    await auth.authenticate(f"Bearer {token}", "")
    before = hits()
    principal = await auth.authenticate(f"Bearer {token}", "")
    assert "user-1" == principal.subject
    assert 0.0 == hits() - before


async def test_refusals_say_why(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """An untrusted issuer, an inactive token, a token the provider calls revoked, and a
    token naming nobody are each refused with their own public reason."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session)
    stranger = key.sign(fake_provider.token_claims(iss="https://stranger.example"))
    fake_provider.introspection["nobody"] = live(sub=None)
    cases = [
        (stranger, "The token's issuer is not trusted."),
        ("inactive", "The access token is not active."),
        ("nobody", "The token names neither a subject nor a client."),
    ]
    for token, reason in cases:
        with pytest.raises(InvalidToken) as info:
            await auth.authenticate(f"Bearer {token}", "")
        assert reason == info.value.public_message, token


async def test_a_jwt_the_endpoint_will_not_introspect_is_checked_locally_for_a_while(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """With mode 'all', an endpoint answering unsupported_token_type for a valid JWT makes
    the gateway check that issuer's JWTs locally for cache_ttl seconds, then ask again."""
    clock = FakeClock(time.time())
    key = rsa_key("k1")
    fake_provider.publish(key)
    config = Bearer(issuers=[issuer(fake_provider, "all")], cache_ttl=60)
    auth = BearerAuthenticator(config, http_session, clock=clock)
    first = key.sign(fake_provider.token_claims(jti="1"))
    fake_provider.unsupported.add(first)
    principal = await auth.authenticate(f"Bearer {first}", "")
    assert ("user-1", 1) == (principal.subject, fake_provider.hits["/introspect"])
    second = key.sign(fake_provider.token_claims(jti="2"))
    await auth.authenticate(f"Bearer {second}", "")
    assert 1 == fake_provider.hits["/introspect"]  # paused: checked locally
    clock.advance(59)
    await auth.authenticate(f"Bearer {key.sign(fake_provider.token_claims(jti='3'))}", "")
    assert 1 == fake_provider.hits["/introspect"]
    clock.advance(1)
    third = key.sign(fake_provider.token_claims(jti="4"))
    fake_provider.introspection[third] = live(sub="asked-again")
    assert "asked-again" == (await auth.authenticate(f"Bearer {third}", "")).subject
    assert 2 == fake_provider.hits["/introspect"]


async def test_a_forged_jwt_does_not_pause_introspection(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """Only a JWT that passes the local checks pauses introspection: a forged one that
    draws unsupported_token_type is refused and the next JWT is introspected as usual."""
    key, forger = rsa_key("k1"), rsa_key("k1", slot=1)
    fake_provider.publish(key)
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "all")]), http_session)
    forged = forger.sign(fake_provider.token_claims())
    fake_provider.unsupported.add(forged)
    with pytest.raises(InvalidToken, match="signature is invalid"):
        await auth.authenticate(f"Bearer {forged}", "")
    genuine = key.sign(fake_provider.token_claims(jti="g"))
    fake_provider.introspection[genuine] = live(sub="introspected")
    assert "introspected" == (await auth.authenticate(f"Bearer {genuine}", "")).subject


async def test_a_bearer_token_in_the_query_string_is_refused_whatever_the_header(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """access_token in the URL (logged everywhere) is a 400 even with a valid header."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session)
    token = key.sign(fake_provider.token_claims())
    assert "user-1" == (await auth.authenticate(f"Bearer {token}")).subject
    with pytest.raises(BadRequest, match="access_token in the query string"):
        await auth.authenticate(f"Bearer {token}", f"access_token={token}")


async def test_the_gate_runs_only_for_tokens_not_yet_accepted(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A rate-limit gate is consulted before the first check of a token, not on reuse."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session)
    calls: list[str] = []
    token = key.sign(fake_provider.token_claims())
    await auth.authenticate(f"Bearer {token}", "", gate=lambda: calls.append("gate"))
    await auth.authenticate(f"Bearer {token}", "", gate=lambda: calls.append("gate"))
    assert ["gate"] == calls


async def test_a_jwt_callers_groups_come_from_the_issuers_configured_path(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """With claims.groups configured for the issuer, a JWT caller's groups are read there
    (never from a 'groups' claim the token also carries); issuer and claims are kept."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    trusted = issuer(fake_provider, "opaque").model_copy(
        update={"claims": ClaimPaths(groups="realm_access.roles")}
    )
    auth = BearerAuthenticator(Bearer(issuers=[trusted]), http_session)
    claims = fake_provider.token_claims(groups=["forged"], realm_access={"roles": ["ops"]})
    principal = await auth.authenticate([f"Bearer {key.sign(claims)}"], "")
    assert (fake_provider.issuer, ["ops"]) == (principal.issuer, principal.claims["groups"])
    assert {"roles": ["ops"]} == principal.claims["realm_access"]


def test_a_non_text_client_id_is_no_client() -> None:
    """A client_id or azp that is not a string names no client."""
    principal = principal_from_claims("https://idp", {"sub": "u", "client_id": 5})
    assert (None, {"sub": "u", "client_id": 5}) == (principal.client_id, principal.claims)


async def test_an_okta_org_server_jwt_it_will_not_introspect_is_refused(
    fake_provider: FakeProvider,
    http_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An Okta org server's JWTs cannot be checked locally: when its endpoint will not
    introspect one, the token is refused (never accepted on the local check) and logged."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    okta = issuer(fake_provider, "all").model_copy(update={"profile": "okta"})
    auth = BearerAuthenticator(Bearer(issuers=[okta]), http_session)
    token = key.sign(fake_provider.token_claims())
    fake_provider.unsupported.add(token)
    with caplog.at_level(logging.WARNING, logger="gateway.tokens.authenticator"):
        with pytest.raises(InvalidToken) as caught:
            await auth.authenticate(f"Bearer {token}", "")
    assert "The token could not be verified." == caught.value.public_message
    assert [
        f"{fake_provider.issuer} refused to introspect a token that cannot be checked "
        "locally (okta org server)"
    ] == [r.getMessage() for r in caplog.records]


async def test_the_pause_of_jwt_introspection_is_logged_once(
    fake_provider: FakeProvider,
    http_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The operator is told, once, that an issuer's JWTs are now checked locally and for
    how long."""
    key = rsa_key("k1")
    fake_provider.publish(key)
    auth = BearerAuthenticator(
        Bearer(issuers=[issuer(fake_provider, "all")], cache_ttl=60), http_session
    )
    for jti in ("1", "2"):
        token = key.sign(fake_provider.token_claims(jti=jti))
        fake_provider.unsupported.add(token)
        with caplog.at_level(logging.WARNING, logger="gateway.tokens.authenticator"):
            await auth.authenticate(f"Bearer {token}", "")
    assert [
        f"{fake_provider.issuer} does not introspect its JWTs; checking them locally for 60s"
    ] == [r.getMessage() for r in caplog.records]


async def test_metadata_and_keys_are_refreshed_by_the_gateways_clock(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """The issuer's metadata and key set are read again once an hour has passed on the
    clock the gateway was given (not another one): a key the issuer withdrew then stops
    verifying."""
    clock = FakeClock(time.time())
    old, new = rsa_key("k1"), rsa_key("k1", slot=1)
    fake_provider.publish(old)
    auth = BearerAuthenticator(
        Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session, clock=clock
    )
    claims = fake_provider.token_claims(exp=int(clock.now) + 7200)
    assert "user-1" == (await auth.authenticate(f"Bearer {old.sign(claims)}", "")).subject
    fake_provider.publish(new)
    clock.advance(3601)
    later = fake_provider.token_claims(iat=int(clock.now), exp=int(clock.now) + 600, jti="2")
    with pytest.raises(InvalidToken, match="signature is invalid"):
        await auth.authenticate(f"Bearer {old.sign(later)}", "")
    discovery = "/.well-known/openid-configuration"
    assert (2, 2) == (fake_provider.hits[discovery], fake_provider.hits["/jwks"])
    assert "user-1" == (await auth.authenticate(f"Bearer {new.sign(later)}", "")).subject


def private_key_jwt_issuer(fake_provider: FakeProvider, tmp_path: Path) -> TrustedIssuer:
    """The provider's issuer, introspecting as client `rs` with a private_key_jwt assertion."""
    pem = tmp_path / "rs.pem"
    pem.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    introspection = Introspection(
        client_id="rs", auth_method="private_key_jwt", private_key_file=str(pem), mode="opaque"
    )
    return issuer(fake_provider).model_copy(update={"introspection": introspection})


async def test_a_private_key_jwt_assertion_is_dated_by_the_gateways_clock(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The introspection client authenticates with an assertion whose iat and exp come
    from the gateway's clock (the provider judges them), valid for a minute."""
    clock = FakeClock(1_234_567.0)
    trusted = private_key_jwt_issuer(fake_provider, tmp_path)
    fake_provider.introspection["opaque"] = live(exp=None)
    auth = BearerAuthenticator(Bearer(issuers=[trusted]), http_session, clock=clock)
    assert "u" == (await auth.authenticate("Bearer opaque", "")).subject
    form = fake_provider.introspection_requests[0]["form"]
    assertion = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert (1_234_567, 1_234_627) == (assertion["iat"], assertion["exp"])


async def test_the_assertion_names_the_issuer_as_its_audience(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A private_key_jwt assertion is addressed to the issuer (RFC 7523 3, `aud`) and names
    the resource server's client as iss and sub."""
    trusted = private_key_jwt_issuer(fake_provider, tmp_path)
    fake_provider.introspection["opaque"] = live()
    await BearerAuthenticator(Bearer(issuers=[trusted]), http_session).authenticate(
        "Bearer opaque", ""
    )
    form = fake_provider.introspection_requests[0]["form"]
    assertion = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert (fake_provider.issuer, "rs", "rs") == (
        assertion["aud"],
        assertion["iss"],
        assertion["sub"],
    )


def shared_verdicts(clock: FakeClock) -> SharedState:
    return SharedState(MemoryStore(), KeyRing([Secret("s" * 40)]), "test", clock=clock)


async def test_a_shared_verdict_never_serves_an_instance_with_other_audiences(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """Two instances share introspection verdicts; one that serves another audience never
    takes the other's verdict from the shared store: it asks and refuses the token."""
    clock = FakeClock(time.time())
    shared = shared_verdicts(clock)
    fake_provider.introspection["opaque"] = live()
    orders = Bearer(issuers=[issuer(fake_provider, "opaque")], shared_cache=True)
    billing_issuer = issuer(fake_provider, "opaque").model_copy(
        update={"audiences": ["api://billing"]}
    )
    billing = Bearer(issuers=[billing_issuer], shared_cache=True)
    first = BearerAuthenticator(orders, http_session, shared, clock)
    assert "u" == (await first.authenticate("Bearer opaque", "")).subject
    other = BearerAuthenticator(billing, http_session, shared, clock)
    with pytest.raises(InvalidToken) as refused:
        await other.authenticate("Bearer opaque", "")
    assert "The token is not meant for this service (audience)." == refused.value.public_message
    assert 2 == fake_provider.hits["/introspect"]


async def test_the_shared_verdict_cache_is_used_only_when_configured(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """With bearer.shared_cache on, a second instance takes the first one's verdict without
    a call; with it off, each instance asks the endpoint itself (and sees a revocation)."""
    clock = FakeClock(time.time())
    fake_provider.introspection["opaque"] = live()
    for enabled, calls in ((True, 1), (False, 2)):
        fake_provider.hits.clear()
        shared = shared_verdicts(clock)
        config = Bearer(issuers=[issuer(fake_provider, "opaque")], shared_cache=enabled)
        for _ in range(2):
            instance = BearerAuthenticator(config, http_session, shared, clock)
            assert "u" == (await instance.authenticate("Bearer opaque", "")).subject
        assert calls == fake_provider.hits["/introspect"], enabled


async def test_introspection_verdicts_expire_by_the_gateways_clock(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A cached verdict lasts cache_ttl on the gateway's clock: after that a revoked token
    is refused."""
    clock = FakeClock(time.time())
    fake_provider.introspection["opaque"] = live(exp=int(clock.now) + 3600)
    config = Bearer(issuers=[issuer(fake_provider, "opaque")], cache_ttl=60)
    auth = BearerAuthenticator(config, http_session, clock=clock)
    assert "u" == (await auth.authenticate("Bearer opaque", "")).subject
    fake_provider.introspection["opaque"] = {"active": False}
    clock.advance(59)
    assert "u" == (await auth.authenticate("Bearer opaque", "")).subject
    clock.advance(2)
    with pytest.raises(InvalidToken) as refused:
        await auth.authenticate("Bearer opaque", "")
    assert "The access token is not active." == refused.value.public_message


async def test_local_jwts_expire_by_the_gateways_clock(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A JWT's exp is judged by the clock the gateway was given."""
    clock = FakeClock(time.time())
    key = rsa_key("k1")
    fake_provider.publish(key)
    auth = BearerAuthenticator(
        Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session, clock=clock
    )
    token = key.sign(fake_provider.token_claims(exp=int(clock.now) + 600))
    clock.advance(3000)
    with pytest.raises(InvalidToken) as refused:
        await auth.authenticate(f"Bearer {token}", "")
    assert "The access token has expired." == refused.value.public_message


async def test_introspected_claims_are_the_answer_without_active(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """An introspected caller's claims are the provider's answer minus `active`, with the
    groups read at the issuer's configured path."""
    trusted = issuer(fake_provider, "opaque").model_copy(
        update={"claims": ClaimPaths(groups="realm_access.roles")}
    )
    answer = live(exp=None, groups=["forged"], realm_access={"roles": ["ops"]})
    fake_provider.introspection["opaque"] = answer
    auth = BearerAuthenticator(Bearer(issuers=[trusted]), http_session)
    principal = await auth.authenticate("Bearer opaque", "")
    assert "active" not in principal.claims
    assert ["ops"] == principal.claims["groups"]
    assert {"roles": ["ops"]} == principal.claims["realm_access"]


async def test_the_dpop_scheme_is_read_only_when_dpop_is_enabled(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """`Authorization: DPoP <token>` names the caller when bearer.dpop is on (its proof is
    checked on the route); with DPoP off it carries no bearer credentials."""
    fake_provider.introspection["opaque"] = live()
    trusted = [issuer(fake_provider, "opaque")]
    on = BearerAuthenticator(Bearer(issuers=trusted), http_session)
    assert "u" == (await on.authenticate("DPoP opaque", "")).subject
    off = BearerAuthenticator(Bearer(issuers=trusted, dpop=Dpop(enabled=False)), http_session)
    with pytest.raises(MissingToken, match="not of the Bearer scheme"):
        await off.authenticate("DPoP opaque", "")


async def test_dpop_proofs_are_checked_with_the_gateways_clock_and_replay_store(
    http_session: aiohttp.ClientSession,
) -> None:
    """The authenticator's DPoP verifier judges proof age by the gateway's clock and spends
    jtis in the replay store it was given: a replayed proof is refused."""
    clock = FakeClock(1_000_000.0)
    replay = shared_verdicts(clock)
    auth = BearerAuthenticator(Bearer(), http_session, clock=clock, dpop_replay=replay)
    key = DpopKey()
    proof = key.proof("GET", "https://api.example/x", token="t", iat=clock.now)
    bound = {"cnf": {"jkt": key.jkt}}
    args: dict[str, Any] = {"scheme": "dpop", "token": "t", "claims": bound, "method": "GET",
                            "url": "https://api.example/x", "required": False}  # fmt: skip
    await auth.dpop.check(proofs=[proof], **args)
    with pytest.raises(DpopRefused) as refused:
        await auth.dpop.check(proofs=[proof], **args)
    assert "The DPoP proof was already used (jti)." == refused.value.public_message


async def test_bearer_validation_is_traced_under_its_documented_name(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """With tracing on, each bearer check is a `bearer validate` span (docs/observability.md)."""
    pytest.importorskip("opentelemetry.sdk", reason="the optional extra 'tracing' is not installed")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.start(Tracing(enabled=True), exporter=exporter)
    try:
        fake_provider.introspection["opaque"] = live()
        auth = BearerAuthenticator(Bearer(issuers=[issuer(fake_provider, "opaque")]), http_session)
        await auth.authenticate("Bearer opaque", "")
    finally:
        tracing.stop()
    assert "bearer validate" in [span.name for span in exporter.get_finished_spans()]
