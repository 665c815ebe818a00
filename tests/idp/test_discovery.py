"""Discovery: exact issuer, caching, back-off with stale fallback, hand-made endpoints, check."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from gateway.config import parse_config
from gateway.config.model import Endpoints, Provider
from gateway.errors import ConfigError, ProviderUnavailable
from gateway.idp.check import check_provider
from gateway.idp.discovery import MetadataSource, discovery_url, parse_metadata
from tests.idp.fake_provider import FakeClock, FakeProvider, open_guard


def source(
    fake: FakeProvider, session: aiohttp.ClientSession, clock: FakeClock, **options: Any
) -> MetadataSource:
    return MetadataSource(fake.issuer, session, guard=open_guard(), clock=clock, **options)


def provider(fake: FakeProvider, **overrides: Any) -> Provider:
    settings: dict[str, Any] = {
        "name": "acme", "issuer": fake.issuer, "client_id": "gateway", "client_secret": "s3cret",
        "allow_insecure_http": True, "allow_private_network": True,
    }  # fmt: skip
    return Provider(**{**settings, **overrides})


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        ("https://idp.example.com", "https://idp.example.com/.well-known/openid-configuration"),
        ("https://h/oidc/v1", "https://h/oidc/v1/.well-known/openid-configuration"),
        ("https://h/realms/x/", "https://h/realms/x/.well-known/openid-configuration"),
    ],
)
def test_discovery_url(issuer: str, url: str) -> None:
    """The document lives under the issuer's path (Parako.ID serves it under /oidc/v1)."""
    assert discovery_url(issuer) == url


@pytest.mark.parametrize("published", ["https://h/", "https://H", "https://h/x", None, 7])
def test_issuer_must_match_exactly(published: Any) -> None:
    """A published issuer differing in any character is refused."""
    with pytest.raises(ProviderUnavailable, match="exactly equal"):
        parse_metadata({"issuer": published}, "https://h")


def test_metadata_fields_are_read_leniently() -> None:
    """Wrong-typed fields read as absent; lists keep only strings."""
    meta = parse_metadata(
        {"issuer": "https://h", "token_endpoint": 5, "backchannel_logout_supported": "yes",
         "code_challenge_methods_supported": ["S256", 1]},
        "https://h",
    )  # fmt: skip
    assert meta.token_endpoint is None
    assert meta.code_challenge_methods_supported == ("S256",)
    assert meta.backchannel_logout_supported is False


async def test_discovered_and_cached(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """The document is fetched once and served from cache until the TTL ends."""
    clock = FakeClock()
    metadata = source(fake_provider, http_session, clock, ttl=60)
    first = await metadata.get()
    assert first.jwks_uri == f"{fake_provider.issuer}/jwks"
    assert first.code_challenge_methods_supported == ("S256",)
    await metadata.get()
    assert fake_provider.hits["/.well-known/openid-configuration"] == 1
    clock.advance(61)
    await metadata.get()
    assert fake_provider.hits["/.well-known/openid-configuration"] == 2


async def test_concurrent_first_fetch_is_shared(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """Twenty concurrent callers cause one fetch."""
    metadata = source(fake_provider, http_session, FakeClock())
    results = await asyncio.gather(*(metadata.get() for _ in range(20)))
    assert {r.issuer for r in results} == {fake_provider.issuer}
    assert fake_provider.hits["/.well-known/openid-configuration"] == 1


async def test_stale_document_survives_outage_and_refetches_back_off(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """After the TTL, a failing refetch keeps the old document; retries wait longer each time."""
    clock = FakeClock()
    metadata = source(fake_provider, http_session, clock, ttl=60)
    cached = await metadata.get()
    fake_provider.failing.add("/.well-known/openid-configuration")
    clock.advance(61)
    assert await metadata.get() == cached  # attempt 1 fails, stale served
    assert await metadata.get() == cached  # within back-off: no attempt
    assert fake_provider.hits["/.well-known/openid-configuration"] == 2
    clock.advance(1.5)
    await metadata.get()  # attempt 2 (after 1 s)
    clock.advance(1.5)
    await metadata.get()  # back-off is now 2 s: no attempt
    assert fake_provider.hits["/.well-known/openid-configuration"] == 3
    fake_provider.failing.clear()
    clock.advance(5)
    await metadata.get()
    assert fake_provider.hits["/.well-known/openid-configuration"] == 4


async def test_never_loaded_and_down_raises(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """Without any cached document an outage is ProviderUnavailable, also during back-off."""
    fake_provider.failing.add("/.well-known/openid-configuration")
    metadata = source(fake_provider, http_session, FakeClock())
    for _ in range(2):
        with pytest.raises(ProviderUnavailable, match="answered HTTP 500"):
            await metadata.get()
    assert fake_provider.hits["/.well-known/openid-configuration"] == 1


async def test_hand_configured_endpoints_need_no_fetch(http_session: aiohttp.ClientSession) -> None:
    """With discovery off the metadata is the configured endpoints (PiPA)."""
    pipa = Provider(
        name="pipa", issuer="https://pipa.co", client_id="c", client_secret="s", discovery=False,
        endpoints=Endpoints(authorization="https://pipa.co/auth/authorize",
                            token="https://pipa.co/auth/token", jwks="https://pipa.co/jwks"),
    )  # fmt: skip
    meta = await MetadataSource.for_provider(pipa, http_session).get()
    assert meta.token_endpoint == "https://pipa.co/auth/token"
    assert meta.userinfo_endpoint is None


async def test_configured_endpoints_override_discovered(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A hand-set userinfo template (TOKI) wins over the discovered one."""
    template = "https://toki.example/users/{user_id}"
    meta = await MetadataSource.for_provider(
        provider(fake_provider, endpoints=Endpoints(userinfo=template)), http_session
    ).get()
    assert meta.userinfo_endpoint == template
    assert meta.token_endpoint == f"{fake_provider.issuer}/token"


def test_invalid_issuer_is_a_config_error() -> None:
    """An issuer with a query string is refused when the config is read, with its key path."""
    text = (
        "routes: [{path: /, upstream: 'http://u'}]\n"
        "providers: [{name: x, issuer: 'https://idp.example.com?a=1', client_id: c,"
        " client_secret: s}]\n"
    )
    with pytest.raises(ConfigError, match=r"providers\[0\].*query string"):
        parse_config(text)


def levels(results: list[Any]) -> dict[str, str]:
    return {r.message: r.level for r in results}


async def test_check_healthy_provider(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A consistent provider passes every check (userinfo and logout included)."""
    from tests.idp.fake_provider import rsa_key

    fake_provider.publish(rsa_key("k1"))
    results = await check_provider(provider(fake_provider), http_session)
    assert [r for r in results if r.level != "ok"] == []
    assert any("signing key(s)" in r.message for r in results)


CHECK_PROBLEMS = [
    ({"code_challenge_methods_supported": ["plain"]}, {}, "error", "PKCE S256 is not advertised"),
    ({"code_challenge_methods_supported": None}, {}, "warn", "S256 will be sent"),
    ({}, {"pkce": False}, "warn", "PKCE is switched off"),
    ({}, {"token_endpoint_auth_method": "client_secret_post"}, "error", "accepts only"),
    ({"token_endpoint_auth_methods_supported": None},
     {"token_endpoint_auth_method": "client_secret_post"}, "warn", "advertises none"),
    ({"id_token_signing_alg_values_supported": ["HS256"]}, {}, "error", "only with HS256"),
    ({}, {"id_token_algorithms": ["PS512"]}, "error", "none of id_token_algorithms"),
    ({"backchannel_logout_supported": False}, {}, "warn", "back-channel logout is not advertised"),
    ({"backchannel_logout_session_supported": False}, {}, "warn", "carry no sid"),
    ({"token_endpoint": None}, {}, "error", "token_endpoint is missing"),
    ({"end_session_endpoint": None}, {}, "warn", "no end_session_endpoint"),
    ({"userinfo_endpoint": None}, {}, "warn", "no userinfo_endpoint"),
    ({"token_endpoint": "http://10.0.0.1/token"}, {}, "error", "plain http"),
]  # fmt: skip


@pytest.mark.parametrize(("metadata", "settings", "level", "fragment"), CHECK_PROBLEMS)
async def test_check_reports_problems(
    fake_provider: FakeProvider,
    http_session: aiohttp.ClientSession,
    metadata: dict[str, Any],
    settings: dict[str, Any],
    level: str,
    fragment: str,
) -> None:
    """Each inconsistency is reported once, as a sentence with its level."""
    from tests.idp.fake_provider import rsa_key

    fake_provider.publish(rsa_key("k1"))
    fake_provider.extra_metadata = metadata
    results = await check_provider(provider(fake_provider, **settings), http_session)
    found = [r for r in results if fragment in r.message]
    assert [r.level for r in found] == [level], levels(results)
    assert found[0].message.startswith("Provider 'acme': ")


async def test_check_unreachable_provider(http_session: aiohttp.ClientSession) -> None:
    """A provider that cannot be reached yields one error saying so."""
    results = await check_provider(
        Provider(name="down", issuer="http://127.0.0.1:9", client_id="c", client_secret="s",
                 allow_insecure_http=True, allow_private_network=True),
        http_session,
    )  # fmt: skip
    assert [r.level for r in results] == ["error"]
    assert "cannot load the discovery document" in results[0].message


async def test_check_issuer_mismatch_and_private_address(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A trailing-slash mismatch and a loopback address without the option are both errors."""
    mismatch = await check_provider(
        provider(fake_provider, issuer=fake_provider.issuer + "/"), http_session
    )
    assert "exactly equal" in mismatch[0].message
    guarded = await check_provider(
        provider(fake_provider, allow_private_network=False), http_session
    )
    assert "allow_private_network" in guarded[0].message


async def test_check_rejects_bad_issuer_url(http_session: aiohttp.ClientSession) -> None:
    """Issuer URL problems are reported without any network call (defence in depth:
    loading the config already refuses them, so the model is built unvalidated here)."""
    results = await check_provider(
        Provider.model_construct(
            **{
                **Provider(
                    name="x", issuer="https://idp.example.com", client_id="c", client_secret="s"
                ).__dict__,
                "issuer": "https://u:p@idp.example.com#f",
            }
        ),
        http_session,
    )
    assert {r.level for r in results} == {"error"}
    assert len(results) == 2
