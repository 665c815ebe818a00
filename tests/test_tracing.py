"""OpenTelemetry tracing: spans reach a real OTLP/HTTP endpoint, context reaches upstream and
provider, and no secret lands in a span.

The collector here is a small aiohttp endpoint in the test that decodes each export with the
official `opentelemetry-proto` messages (ExportTraceServiceRequest): the gateway's real OTLP
exporter sends to it over HTTP exactly as it would to an OpenTelemetry Collector.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.redis import RedisServer
from tests.test_metrics import parse
from tests.test_metrics import value as sample
from tests.web.login_setup import start_login_gateway

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
# The OP's access tokens live 3600 s: after a second has passed, the next request refreshes.
REFRESH_BEFORE = 3599
# Fast export, so a test need not wait for the default 5 s batch delay.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}


@dataclass
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


@dataclass
class Collector:
    url: str
    spans: list[Span] = field(default_factory=list)
    resource_attributes: list[dict[str, Any]] = field(default_factory=list)

    async def wait_for(self, *names: str, patience: float = 15.0) -> list[Span]:
        """The spans received once every name in ``names`` has arrived."""
        for _ in range(int(patience / 0.05)):
            if set(names) <= {s.name for s in self.spans}:
                return list(self.spans)
            await asyncio.sleep(0.05)
        missing = set(names) - {s.name for s in self.spans}
        raise AssertionError(f"spans never arrived: {sorted(missing)}")

    async def wait_count(self, name: str, count: int, patience: float = 15.0) -> None:
        """Wait until ``count`` spans called ``name`` have arrived."""
        for _ in range(int(patience / 0.05)):
            if len(self.named(name)) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{len(self.named(name))} spans {name!r}, expected {count}")

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]

    def by_id(self, span_id: str) -> Span:
        return next(s for s in self.spans if s.span_id == span_id)


def _value(any_value: Any) -> Any:
    return (
        getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None
    )


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    """An OTLP/HTTP traces endpoint decoding protobuf exports with opentelemetry-proto."""
    port = free_port()
    found = Collector(f"http://127.0.0.1:{port}/v1/traces")

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            found.resource_attributes.append(
                {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.spans.append(
                        Span(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield found
    await runner.cleanup()


def tracing_config(collector: Collector, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "endpoint": collector.url, **extra}


def traceparent_parts(value: str) -> tuple[str, str]:
    """(trace id, parent span id) of a W3C traceparent header."""
    version, trace_id, parent_id, _flags = value.split("-")
    assert "00" == version
    return trace_id, parent_id


async def test_login_refresh_and_bearer_call_are_traced_without_secrets(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    collector: Collector,
) -> None:
    """A real login, a refresh and a bearer call produce a span tree (server span per
    request; provider, Redis, session, bearer and upstream spans under it); the upstream
    and the provider receive a traceparent naming the span that called them; the access log
    pairs request id and trace id; the refresh is counted; no token, code, cookie, secret or
    claim value appears in any span or resource attribute."""
    rs = oidc_provider.register_client()
    routes: list[dict[str, Any]] = [
        {"name": "app", "path": "/app/", "upstream": upstream, "auth": "login",
         "pass_access_token": True},
        {"name": "api", "path": "/api/", "upstream": upstream, "auth": "bearer"},
    ]  # fmt: skip
    bearer = {
        "issuers": [
            {
                "issuer": oidc_provider.issuer,
                "audiences": ["urn:test:api"],
                "allow_insecure_http": True,
                "allow_private_network": True,
                "introspection": {
                    "client_id": rs["client_id"],
                    "client_secret": rs["client_secret"],
                },
            }
        ]
    }
    sessions = {
        "store": "redis",
        "redis": {"url": redis_server.url, "key_prefix": "t-tracing:"},
        "refresh_before": REFRESH_BEFORE,
    }

    def factory(config: dict[str, Any], **kwargs: Any) -> Any:
        return gateway_factory(config, env=FAST_EXPORT, **kwargs)

    gw, client = start_login_gateway(
        factory,
        oidc_provider,
        upstream,
        routes=routes,
        sessions=sessions,
        extra={"bearer": bearer, "tracing": tracing_config(collector)},
    )
    seen_urls: list[str] = []

    async def on_request_start(_s: Any, _c: Any, params: aiohttp.TraceRequestStartParams) -> None:
        seen_urls.append(str(params.url))

    trace_config = aiohttp.TraceConfig()
    trace_config.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), trace_configs=[trace_config]
    ) as browser:
        first = await http_login(browser, f"{gw.url}/app/start", user="ivy")
        assert 200 == first.status
        await asyncio.sleep(1.5)  # the next request refreshes the access token
        async with browser.get(f"{gw.url}/app/again", headers={"Accept": "application/json"}) as r:
            assert 200 == r.status
            again = await r.json()
        async with browser.get(f"{gw.url}/_gateway/userinfo") as r:
            claims = await r.json()
        cookies = [c.value for c in browser.cookie_jar]
    opaque = oidc_provider.client_credentials_token(rs, resource="urn:test:api-opaque")
    jwt_token = oidc_provider.client_credentials_token(rs)
    async with aiohttp.ClientSession() as api:
        for token in (opaque, jwt_token):
            async with api.get(
                f"{gw.url}/api/x", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert 200 == r.status
                bearer_seen = await r.json()

    await collector.wait_for(
        "provider token_exchange",
        "provider refresh",
        "provider introspection",
        "session refresh",
        "bearer validate",
    )
    await collector.wait_count("GET api", 2)  # both bearer calls' server spans end last

    # -- the tree: the callback's code exchange and the refresh sit under their requests
    callback = collector.named("GET /_gateway/callback")[0]
    assert SERVER == callback.kind
    exchange = collector.named("provider token_exchange")[0]
    assert CLIENT == exchange.kind
    assert (callback.trace_id, callback.span_id) == (exchange.trace_id, exchange.parent_id)
    # the login state read and the new session written to the real Redis
    in_callback = [s for s in collector.spans if s.trace_id == callback.trace_id]
    assert "redis SET" in {s.name for s in in_callback}
    assert all(
        "redis" == s.attributes["db.system.name"] for s in in_callback if s.name[:6] == "redis "
    )
    refresh = collector.named("provider refresh")[0]
    session_refresh = collector.by_id(refresh.parent_id)
    assert "session refresh" == session_refresh.name
    refreshed_request = collector.by_id(session_refresh.parent_id)
    assert ("GET app", SERVER) == (refreshed_request.name, refreshed_request.kind)
    assert "app" == refreshed_request.attributes["http.route"]
    assert "login" == refreshed_request.attributes["gateway.auth_mode"]
    assert "ok" == refreshed_request.attributes["gateway.outcome"]
    assert 200 == refreshed_request.attributes["http.response.status_code"]
    names_in_request = {s.name for s in collector.spans if s.trace_id == refreshed_request.trace_id}
    assert {"session load", "upstream", "redis GET"} <= names_in_request
    introspection = collector.named("provider introspection")[0]
    validate = collector.by_id(introspection.parent_id)
    assert "bearer validate" == validate.name
    assert "bearer" == collector.by_id(validate.parent_id).attributes["gateway.auth_mode"]
    assert {"provider discovery", "provider jwks"} <= {s.name for s in collector.spans}

    # -- the upstream saw the upstream span as its parent, in the request's trace
    upstream_trace, upstream_parent = traceparent_parts(again["headers"]["traceparent"])
    upstream_span = collector.by_id(upstream_parent)
    assert ("upstream", CLIENT) == (upstream_span.name, upstream_span.kind)
    assert refreshed_request.trace_id == upstream_trace
    assert collector.by_id(upstream_span.parent_id) is refreshed_request
    assert traceparent_parts(bearer_seen["headers"]["traceparent"])[0] in {
        s.trace_id for s in collector.named("GET api")
    }

    # -- the provider saw the token-endpoint spans as parents
    async with aiohttp.ClientSession() as plain:
        async with plain.get(oidc_provider.url("/test/traceparents")) as r:
            at_provider = await r.json()
    token_path = urlsplit(oidc_provider.endpoint("token")).path
    parents = {traceparent_parts(v)[1] for v in at_provider[f"POST {token_path}"]}
    assert {exchange.span_id, refresh.span_id} <= parents

    # -- the refresh is counted by outcome, the provider calls by host and endpoint
    async with aiohttp.ClientSession() as plain:
        async with plain.get(f"http://{gw.config['metrics']['listen']}/metrics") as r:
            scraped = parse(await r.text())
    assert 1 == sample(scraped, "gateway_refreshes_total", outcome="refreshed")
    assert 1 == sample(
        scraped, "gateway_provider_calls_total",
        provider="127.0.0.1", endpoint="refresh", result="2xx",
    )  # fmt: skip

    # -- access log lines pair the request id with the trace id
    access = [
        json.loads(line)
        for line in gw.log_text().splitlines()
        if line.startswith("{") and '"logger":"gateway.access"' in line
    ]
    callback_line = next(a for a in access if a["path"] == "/_gateway/callback")
    assert callback.trace_id == callback_line["trace_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", callback_line["request_id"])

    # -- no secret in any attribute
    secrets = {
        "access token": again["headers"]["Authorization"].removeprefix("Bearer "),
        "first access token": (await first.json())["headers"]["Authorization"][7:],
        "opaque bearer": opaque,
        "jwt bearer": jwt_token,
        "client secret": client["client_secret"],
        "resource server secret": rs["client_secret"],
    }
    for url in seen_urls:
        query = parse_qs(urlsplit(url).query)
        for name in ("code", "state"):
            for value in query.get(name, []):
                secrets[f"{name} in {urlsplit(url).path}"] = value
    for i, value in enumerate(cookies):
        if len(value) >= 8:  # cleared cookies are empty
            secrets[f"cookie {i}"] = value
    for name, value in claims.items():
        if isinstance(value, str) and len(value) >= 4:
            secrets[f"claim {name}"] = value
    assert any(k.startswith("code in") for k in secrets)  # the login's code was captured
    values = [
        str(v)
        for attributes in [s.attributes for s in collector.spans] + collector.resource_attributes
        for v in attributes.values()
    ]
    leaked = sorted(
        {
            f"{what}={secret!r} in {v!r}"
            for what, secret in secrets.items()
            for v in values
            if secret in v
        }
    )
    assert [] == leaked
    assert not [v for v in values if re.search(r"eyJ[A-Za-z0-9_-]{4,}\.", v)]


async def test_incoming_traceparent_is_continued_only_from_trusted_proxies(
    gateway_factory: Any, upstream: str, collector: Collector
) -> None:
    """A client's traceparent does not choose the trace (nor reach the upstream) unless
    the client is a trusted proxy; from a trusted proxy the trace is continued."""
    client_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    sent = {"traceparent": f"00-{client_trace}-00f067aa0ba902b7-01", "tracestate": "k=v"}
    route = {"name": "open", "path": "/", "upstream": upstream, "auth": "public"}
    untrusted = gateway_factory(
        {"routes": [route], "tracing": tracing_config(collector)}, env=FAST_EXPORT, name="u"
    )
    trusted = gateway_factory(
        {
            "routes": [route],
            "trusted_proxies": ["127.0.0.1/32"],
            "tracing": tracing_config(collector, service_name="trusting"),
        },
        env=FAST_EXPORT,
        name="t",
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{untrusted.url}/x", headers=sent) as r:
            untrusted_seen = (await r.json())["headers"]
        async with session.get(f"{trusted.url}/x", headers=sent) as r:
            trusted_seen = (await r.json())["headers"]

    untrusted_trace, _ = traceparent_parts(untrusted_seen["traceparent"])
    assert client_trace != untrusted_trace
    assert "tracestate" not in untrusted_seen
    trusted_trace, _ = traceparent_parts(trusted_seen["traceparent"])
    assert client_trace == trusted_trace
    await collector.wait_count("GET open", 2)
    servers = {s.trace_id: s for s in collector.named("GET open")}
    assert {untrusted_trace, client_trace} == set(servers)
    assert "" == servers[untrusted_trace].parent_id
    assert "00f067aa0ba902b7" == servers[client_trace].parent_id


def _run_python(code: str, tmp_path: Path, extra_path: Path | None = None) -> str:
    env = dict(os.environ)
    paths = [str(extra_path)] if extra_path else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(Path(__file__).resolve().parents[1])])
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path,
        timeout=60, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_tracing_enabled_without_the_extra_is_a_config_error(tmp_path: Path) -> None:
    """Without OpenTelemetry installed, `tracing.enabled: true` is refused with the key and
    the extra to install named; with tracing off the config loads."""
    # An empty `opentelemetry` package first on the path hides the real one's SDK.
    hidden = tmp_path / "hide"
    (hidden / "opentelemetry").mkdir(parents=True)
    (hidden / "opentelemetry" / "__init__.py").write_text("")
    code = (
        "from pydantic import ValidationError\n"
        "from gateway.config.model import Config\n"
        "routes = [{'path': '/', 'upstream': 'http://127.0.0.1:9', 'auth': 'public'}]\n"
        "Config.model_validate({'routes': routes})\n"
        "print('off: loads')\n"
        "try:\n"
        "    Config.model_validate({'routes': routes, 'tracing': {'enabled': True}})\n"
        "except ValidationError as exc:\n"
        "    print(exc)\n"
    )
    out = _run_python(code, tmp_path, hidden)
    assert "off: loads" in out
    assert "tracing.enabled" in out
    assert "pip install 'oidc-gateway[tracing]'" in out


def test_tracing_off_imports_nothing_of_opentelemetry(tmp_path: Path) -> None:
    """With tracing off (the default), building and serving the app imports nothing of
    OpenTelemetry's tracing SDK or exporter: the extra costs nothing unless switched on.
    (redis-py imports OpenTelemetry's API by itself when it is installed: that is the
    baseline.)"""
    code = (
        "import asyncio, sys\n"
        "import redis.asyncio\n"
        "baseline = {m for m in sys.modules if m.startswith('opentelemetry')}\n"
        "from aiohttp.test_utils import TestClient, TestServer\n"
        "from gateway.config.model import Config\n"
        "from gateway.web.app import build_app\n"
        "config = Config.model_validate({'routes': [{'path': '/', 'auth': 'public', "
        "'upstream': 'http://127.0.0.1:9'}], 'metrics': {'listen': None}})\n"
        "async def main():\n"
        "    async with TestClient(TestServer(build_app(config))) as client:\n"
        "        response = await client.get('/_gateway/healthz')\n"
        "        print('status', response.status)\n"
        "asyncio.run(main())\n"
        "print('imported:', sorted(m for m in sys.modules if m.startswith('opentelemetry') "
        "and m not in baseline))\n"
        "print('sdk trace:', 'opentelemetry.sdk.trace' in sys.modules)\n"
    )
    out = _run_python(code, tmp_path)
    assert "status 200" in out
    assert "imported: []" in out
    assert "sdk trace: False" in out
