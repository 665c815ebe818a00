"""Live probes for `gateway check`: client credentials, bearer issuers, Redis, upstreams."""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import aiohttp

from gateway.config.model import Config, Provider, Route, TrustedIssuer
from gateway.crypto import random_token
from gateway.errors import ProviderUnavailable, StoreUnavailable
from gateway.idp.discovery import MetadataSource
from gateway.idp.http import fetch_json
from gateway.idp.jwks import JwksCache
from gateway.login.client_auth import ClientAuthenticator
from gateway.providers import profile_for
from gateway.sessions.redis import RedisStore
from gateway.sessions.shared import shared_namespace
from gateway.types import Finding

# Answers to a made-up code that prove the client was authenticated first.
_CODE_REFUSED = frozenset({"invalid_grant", "bad_verification_code"})
_CLIENT_REFUSED = frozenset(
    {"invalid_client", "unauthorized_client", "incorrect_client_credentials"}
)
_UPSTREAM_WAIT = 5.0


async def probe_client_credentials(
    provider: Provider, session: aiohttp.ClientSession, redirect_uri: str, where: str
) -> Finding:
    """A code exchange that cannot succeed: the error says whether the client is known."""
    source = MetadataSource.for_provider(
        provider, session, issuer_matches=profile_for(provider).discovery_issuer_matches
    )
    try:
        token_url = (
            provider.endpoints.token
            or (await (source.fetch() if provider.discovery else source.get())).token_endpoint
        )
    except ProviderUnavailable:
        token_url = None
    if token_url is None:
        return Finding("warn", where, "client credentials not checked: no token endpoint known")
    try:
        auth = ClientAuthenticator.for_provider(provider)
    except OSError as exc:
        return Finding("error", f"{where}.private_key_file", f"cannot read it: {exc.strerror}")
    form = {
        "grant_type": "authorization_code",
        "code": "gateway-check-" + random_token(16),
        "redirect_uri": redirect_uri,
    }
    if provider.pkce:
        form["code_verifier"] = random_token(48)
    headers = {"Accept": "application/json"}
    auth.apply(form, headers, audience=token_url)
    try:
        status, body = await fetch_json(
            session,
            token_url,
            guard=source.guard,
            timeout=provider.timeout,
            method="POST",
            data=form,
            headers=headers,
        )
    except ProviderUnavailable as exc:
        return Finding("error", where, f"client credentials not checked: {exc}")
    error = str(body.get("error", ""))
    method = provider.token_endpoint_auth_method
    if error in _CODE_REFUSED:
        return Finding(
            "ok",
            where,
            f"client credentials accepted ({method}): a made-up code "
            f"was refused with {error}, as it should be",
        )
    if error in _CLIENT_REFUSED or status == 401:
        return Finding(
            "error",
            where,
            f"the provider refused the client credentials "
            f"({error or f'HTTP {status}'}): check client_id, client_secret and "
            f"token_endpoint_auth_method ({method}); every login would fail",
        )
    return Finding(
        "warn",
        where,
        "client credentials not confirmed: a made-up code got "
        f"HTTP {status} {error or '(no error code)'}",
    )


async def probe_bearer_issuer(
    issuer: TrustedIssuer, session: aiohttp.ClientSession, where: str
) -> list[Finding]:
    """The issuer's discovery document and JWKS load (what verifying a token needs)."""
    source = MetadataSource.for_trusted_issuer(issuer, session)
    try:
        metadata = await (source.fetch() if issuer.discovery else source.get())
    except ProviderUnavailable as exc:
        return [Finding("error", where, f"cannot load the discovery document: {exc}")]
    found = [
        Finding(
            "ok",
            where,
            "discovery document loaded" if issuer.discovery else "endpoints are configured by hand",
        )
    ]
    if metadata.jwks_uri is None:
        if issuer.introspection is None:
            found.append(
                Finding(
                    "error", where, "no jwks_uri and no introspection: no token can be verified"
                )
            )
        return found
    cache = JwksCache(metadata.jwks_uri, session, source.guard, cooldown=0.0)
    try:
        keys = await cache.fetch_keys()
    except ProviderUnavailable as exc:
        found.append(Finding("error", where, f"cannot load the JWKS: {exc}"))
        return found
    found.append(Finding("ok", where, f"the JWKS holds {len(keys)} key(s)"))
    return found


async def probe_redis(config: Config) -> list[Finding]:
    """Sign in to Redis, then write, read and delete a key in the gateway's namespace."""
    settings = config.sessions.redis
    parts = urlsplit(settings.url)
    where = f"sessions.redis ({parts.hostname}:{parts.port or 6379})"
    store = RedisStore.from_config(settings)
    key = f"check:{shared_namespace(config)}:{random_token(8)}"
    value = random_token(8).encode()
    try:
        await store.ping()
        await store.set(key, value, 30)
        read = await store.get(key)
        await store.delete(key)
    except StoreUnavailable as exc:
        return [Finding("error", where, _redis_words(str(exc)))]
    finally:
        await store.close()
    if read != value:
        return [Finding("error", where, "a key written was not read back")]
    return [
        Finding(
            "ok",
            where,
            f"signed in; wrote, read and deleted {settings.key_prefix}{key.rsplit(':', 1)[0]}:*",
        )
    ]


def _redis_words(error: str) -> str:
    lowered = error.lower()
    if "auth" in lowered or "wrongpass" in lowered or "password" in lowered:
        return f"Redis refused the password (sessions.redis.password or the URL): {error}"
    if "connect" in lowered or "refused" in lowered or "timeout" in lowered:
        return f"cannot reach Redis: {error}"
    return error


async def probe_upstreams(config: Config) -> list[Finding]:
    """Each distinct upstream answers over HTTP and, with https, shows a valid certificate."""
    seen: set[str] = set()
    probes = []
    for i, route in enumerate(config.routes):
        if route.upstream is None or route.upstream in seen:
            continue
        seen.add(route.upstream)
        probes.append(_probe_upstream(route, f"routes[{i}].upstream"))
    return list(await asyncio.gather(*probes))


async def _probe_upstream(route: Route, where: str) -> Finding:
    assert route.upstream is not None
    timeout = aiohttp.ClientTimeout(total=route.timeouts.connect + _UPSTREAM_WAIT)
    context: ssl.SSLContext | bool = True
    if not route.tls.verify:
        context = False
    elif route.tls.ca_file:
        try:
            context = ssl.create_default_context(cafile=route.tls.ca_file)
        except OSError as exc:
            ca_where = where.removesuffix(".upstream") + ".tls.ca_file"
            return Finding("error", ca_where, f"cannot read it: {exc.strerror}")
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(route.upstream, ssl=context, allow_redirects=False) as response,
        ):
            status = response.status
    except aiohttp.ClientSSLError as exc:
        return Finding("warn", where, f"{route.upstream}: TLS certificate not valid: {exc}")
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror or str(exc.os_error)
        return Finding("warn", where, f"{route.upstream} is unreachable: {reason}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Finding("warn", where, f"{route.upstream} did not answer: {type(exc).__name__}")
    return Finding("ok", where, f"{route.upstream} answers (HTTP {status})")
