"""Step-up per route against the real OP, configured with two acr levels (tests/op/op.mjs:
urn:test:pwd for a plain login, urn:test:mfa when asked for, except for "nomfa" users)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp

from tests.support.forms import ANY_PASSWORD
from tests.support.login import HTML_ACCEPT, _follow, _submit, http_login
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway
from tests.web.test_bearer_routes import API, call, trusted_issuer

PWD, MFA = "urn:test:pwd", "urn:test:mfa"
SHOW = {"X-Acr": "acr", "X-Auth-Time": "auth_time", "X-Auth-Request-User": "sub"}


def step_up_gateway(factory: Any, op: OidcProvider, upstream: str) -> Any:
    routes = [
        {"path": "/secure", "upstream": upstream, "auth": "login", "identity_headers": SHOW,
         "step_up": {"acr_values": [MFA]}},
        {"path": "/recent", "upstream": upstream, "auth": "login", "identity_headers": SHOW,
         "step_up": {"max_age": 2}},
        {"path": "/", "upstream": upstream, "auth": "login", "identity_headers": SHOW},
    ]  # fmt: skip
    gw, _ = start_login_gateway(
        factory, op, upstream, routes=routes,
        provider={"acr_levels": [PWD, MFA]}, client_metadata={"require_auth_time": True},
    )  # fmt: skip
    return gw


async def _finish(
    session: aiohttp.ClientSession, resp: aiohttp.ClientResponse, user: str, home: str
) -> aiohttp.ClientResponse:
    """Go through the OP from a redirect to it, back to the gateway (`home`)."""
    trail: list[str] = []
    for _ in range(10):
        resp = await _follow(session, resp, trail)
        if str(resp.url).startswith(home):
            await resp.read()
            return resp
        submitted = await _submit(session, resp, user, ANY_PASSWORD, trail)
        assert submitted is not None, trail
        resp = submitted
    raise AssertionError(trail)


async def test_step_up_sends_the_user_back_and_grants_the_higher_level(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Signed in without MFA, /secure (needs urn:test:mfa) redirects to the OP with
    acr_values and prompt=login; after that login the upstream serves /secure and sees mfa."""
    gw = step_up_gateway(gateway_factory, oidc_provider, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        home = await http_login(session, f"{gw.url}/", user="hana")
        assert "X-Acr" not in (await home.json())["headers"]  # no acr_values asked: no acr
        async with session.get(
            f"{gw.url}/secure", headers={"Accept": "application/json"}
        ) as api_call:
            assert 401 == api_call.status  # not a navigation: a challenge, not a redirect
            assert (
                'error="insufficient_user_authentication"' in (api_call.headers["WWW-Authenticate"])
            )
        async with session.get(
            f"{gw.url}/secure", headers={"Accept": HTML_ACCEPT}, allow_redirects=False
        ) as start:
            query = parse_qs(urlsplit(start.headers["Location"]).query)
        assert ([MFA], ["login"]) == (query["acr_values"], query["prompt"])
        landed = await http_login(session, f"{gw.url}/secure", user="hana")
        assert 200 == landed.status
        assert MFA == (await landed.json())["headers"]["X-Acr"]


async def test_stripped_acr_values_or_a_provider_ignoring_them_is_refused(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A user who removes acr_values and prompt from the authorization URL, and a user the
    OP cannot give MFA, both come back at urn:test:pwd: the callback refuses, /secure is
    never served."""
    gw = step_up_gateway(gateway_factory, oidc_provider, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await http_login(session, f"{gw.url}/", user="ivan")
        start = await session.get(
            f"{gw.url}/secure", headers={"Accept": HTML_ACCEPT}, allow_redirects=False
        )
        parts = urlsplit(start.headers["Location"])
        kept = {k: v for k, v in parse_qs(parts.query).items() if k not in ("acr_values", "prompt")}
        stripped = urlunsplit(parts._replace(query=urlencode(kept, doseq=True)))
        await start.release()
        to_op = await session.get(stripped, allow_redirects=False, headers={"Accept": HTML_ACCEPT})
        back = await _finish(session, to_op, "ivan", gw.url)
        assert 400 == back.status
        assert "raw_path" not in await back.text()
        async with session.get(f"{gw.url}/secure", headers={"Accept": "application/json"}) as still:
            assert 401 == still.status
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await http_login(session, f"{gw.url}/", user="nomfa-judy")
        refused = await http_login(session, f"{gw.url}/secure", user="nomfa-judy")
        assert 400 == refused.status
        assert "raw_path" not in await refused.text()
    log = gw.log_text().splitlines()
    errors = [line for line in log if '"logger":"gateway.audit"' not in line]
    assert sum("step-up not met by the provider's answer" in line for line in errors) == 2
    # ... and each refusal is one step_up_refused line in the audit log.
    assert sum('"event":"step_up_refused"' in line for line in log) == 2


async def test_max_age_forces_a_new_authentication(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """/recent needs a sign-in at most 2 s old: an older session is sent to the OP with
    max_age and authenticates again (a new auth_time reaches the upstream)."""
    gw = step_up_gateway(gateway_factory, oidc_provider, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        first = await http_login(session, f"{gw.url}/recent", user="kim")
        first_time = int((await first.json())["headers"]["X-Auth-Time"])
        await asyncio.sleep(3.2)
        async with session.get(
            f"{gw.url}/recent", headers={"Accept": HTML_ACCEPT}, allow_redirects=False
        ) as start:
            assert ["2"] == parse_qs(urlsplit(start.headers["Location"]).query)["max_age"]
        again = await http_login(session, f"{gw.url}/recent", user="kim")
        assert 200 == again.status
        assert int((await again.json())["headers"]["X-Auth-Time"]) >= first_time + 3


async def test_bearer_route_answers_insufficient_user_authentication(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A bearer token without the required acr gets 401 with the RFC 9470 challenge naming
    acr_values and max_age; the upstream is not called."""
    rs = oidc_provider.register_client()
    gw = gateway_factory({
        "routes": [{"path": "/", "upstream": upstream, "auth": "bearer",
                    "step_up": {"acr_values": [MFA], "max_age": 300}}],
        "bearer": {"issuers": [trusted_issuer(oidc_provider, rs)]},
    })  # fmt: skip
    token = oidc_provider.client_credentials_token(rs, resource=API)
    status, body, challenge = await call(f"{gw.url}/data", token)
    assert 401 == status
    assert body is None or "raw_path" not in body
    assert 'error="insufficient_user_authentication"' in challenge
    assert f'acr_values="{MFA}"' in challenge
    assert 'max_age="300"' in challenge
