"""Fixtures of the differential suite: real upstreams, and gateways in front of them.

Session-scoped (started once, stopped by pid): the six probe upstreams
(tests/support/real_upstreams.py), one proxy-mode gateway per upstream with the routes
below, and a resource-server client at the real OP for bearer tokens.

Proxy-mode routes (the same for every upstream):
  host admin.example.test  /       login   preserve_host   (the admin vhost)
  host www.example.test    /       public  preserve_host   (the public vhost)
  /                                public
  /admin                           login
  /ro/                             public, policy.methods [GET]
  /api/                            bearer, identity_headers {X-Api-User: sub}
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.nginx import Nginx
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.real_upstreams import PROBE_KINDS, Caddy, Probe
from tests.web.login_setup import start_login_gateway

API = "urn:test:api"
WWW, ADMIN = "www.example.test", "admin.example.test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.slow)


def _start_all(things: list[Any]) -> None:
    """Start servers side by side (each start waits for its own readiness)."""
    with ThreadPoolExecutor(max_workers=len(things) or 1) as pool:
        errors = [e for e in pool.map(_start_one, things) if e is not None]
    if errors:
        for thing in things:
            thing.stop()
        raise errors[0]


def _start_one(thing: Any) -> BaseException | None:
    try:
        thing.start()
    except BaseException as error:
        return error
    return None


@pytest.fixture(scope="session")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Probe]]:
    """One running probe upstream of each kind, by name."""
    workdir = tmp_path_factory.mktemp("probes")
    started = {name: kind(workdir / name) for name, kind in PROBE_KINDS.items()}
    _start_all(list(started.values()))
    yield started
    for probe in started.values():
        probe.stop()


@pytest.fixture(scope="session")
def resource_server(oidc_provider: OidcProvider) -> dict[str, Any]:
    """A confidential client at the OP: it gets client_credentials tokens for `API`."""
    return oidc_provider.register_client()


def proxy_routes(upstream: str) -> list[dict[str, Any]]:
    return [
        {"host": ADMIN, "path": "/", "upstream": upstream, "auth": "login",
         "preserve_host": True},
        {"host": WWW, "path": "/", "upstream": upstream, "auth": "public",
         "preserve_host": True},
        {"path": "/", "upstream": upstream, "auth": "public"},
        {"path": "/admin", "upstream": upstream, "auth": "login"},
        {"path": "/ro/", "upstream": upstream, "auth": "public",
         "policy": {"methods": ["GET"]}},
        {"path": "/rw/", "upstream": upstream, "auth": "public",
         "policy": {"methods": ["GET", "POST"]}},
        {"path": "/api/", "upstream": upstream, "auth": "bearer",
         "identity_headers": {"X-Api-User": "sub"}},
    ]  # fmt: skip


def bearer_config(op: OidcProvider) -> dict[str, Any]:
    issuer = {"issuer": op.issuer, "audiences": [API], "allow_insecure_http": True,
              "allow_private_network": True}  # fmt: skip
    return {"issuers": [issuer]}


class _Factory:
    """start_login_gateway's factory, for gateways that live the whole session."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.made: list[GatewayProcess] = []

    def __call__(
        self,
        config: dict[str, Any],
        *,
        name: str = "gateway",
        port: int | None = None,
        start: bool = True,
        env: dict[str, str] | None = None,
    ) -> GatewayProcess:
        gw = GatewayProcess(config, self.workdir / name, name=name, port=port, env=env)
        self.made.append(gw)
        if start:
            gw.start()
        return gw


@pytest.fixture(scope="session")
def gateway_workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Factory]:
    factory = _Factory(tmp_path_factory.mktemp("differential-gateways"))
    yield factory
    for gw in factory.made:
        gw.stop()


@pytest.fixture(scope="session")
def proxy_gateways(
    probes: dict[str, Probe], oidc_provider: OidcProvider, gateway_workdir: _Factory
) -> dict[str, GatewayProcess]:
    """A login+bearer gateway in proxy mode in front of each probe, by probe name."""
    gateways = {}
    for name, probe in probes.items():
        extra = {"bearer": bearer_config(oidc_provider)}
        gateways[name], _ = start_login_gateway(
            gateway_workdir, oidc_provider, probe.url, routes=proxy_routes(probe.url),
            name=f"proxy-{name}", extra=extra,
        )  # fmt: skip
    return gateways


# ---------------------------------------------------------------------------------------
# Forward-auth mode: docs/forward-auth.md's nginx and Caddy snippets, one site per vhost
FORWARD_AUTH_KINDS = ("express", "tomcat", "gunicorn", "php")
FORWARD_AUTH_DOC = Path(__file__).resolve().parents[2] / "docs" / "forward-auth.md"
FORWARD_AUTH_ROUTES: list[dict[str, Any]] = [
    {"host": ADMIN, "path": "/", "upstream": None, "auth": "login"},
    {"host": WWW, "path": "/", "upstream": None, "auth": "public"},
    {"path": "/", "upstream": None, "auth": "public"},
    {"path": "/admin", "upstream": None, "auth": "login"},
    {"path": "/ro/", "upstream": None, "auth": "public", "policy": {"methods": ["GET"]}},
    {"path": "/rw/", "upstream": None, "auth": "public",
     "policy": {"methods": ["GET", "POST"]}},
]  # fmt: skip


def documented_block(language: str) -> str:
    """The first ```<language> block of docs/forward-auth.md, as users copy it."""
    match = re.search(rf"```{language}\n(.*?)```", FORWARD_AUTH_DOC.read_text(), re.DOTALL)
    if match is None:
        raise AssertionError(f"no {language} block in {FORWARD_AUTH_DOC}")
    return match.group(1)


def _fill(text: str, replacements: dict[str, str]) -> str:
    for example, actual in replacements.items():
        assert example in text, f"docs/forward-auth.md lost {example!r}"
        text = text.replace(example, actual)
    return text


def nginx_sites(port: int, gateway: str, sites: list[tuple[str, str]]) -> str:
    """The doc's nginx block: its http-level part (map, default server) once, its last
    server once per (name, app)."""
    block = documented_block("nginx")
    http_level, _, server = block.rpartition("\nserver {")
    default = {"listen 80 default_server;": f"listen 127.0.0.1:{port} default_server;"}
    return _fill(http_level, default) + "".join(
        _fill(
            "\nserver {" + server,
            {
                "listen 80;": f"listen 127.0.0.1:{port};",
                "server_name app.example.com;": f"server_name {name};",
                "http://127.0.0.1:4180": gateway,
                "http://127.0.0.1:3000": app,
            },
        )
        for name, app in sites
    )


def caddy_sites(port: int, gateway: str, sites: list[tuple[str, str]]) -> str:
    """The doc's Caddy site block once per (host, app), bound to 127.0.0.1:`port`."""
    block = documented_block("caddy")
    return "\n".join(
        _fill(
            block,
            {
                "app.example.com {": f"http://{name}:{port} {{\n\tbind 127.0.0.1",
                "127.0.0.1:4180": gateway.removeprefix("http://"),
                "127.0.0.1:3000": app.removeprefix("http://"),
            },
        )
        for name, app in sites
    )


class ForwardAuthSetup:
    """For each app kind, an nginx and a Caddy in front of it, asking one gateway."""

    def __init__(self, workdir: Path, probes: dict[str, Probe]) -> None:
        self.workdir = workdir
        self.main = probes
        self.admin_sites = {k: PROBE_KINDS[k](workdir / f"{k}-admin", site="admin")
                            for k in FORWARD_AUTH_KINDS}  # fmt: skip
        self.ports = {(proxy, kind): free_port() for proxy in ("nginx", "caddy")
                      for kind in FORWARD_AUTH_KINDS}  # fmt: skip
        self.proxies: dict[tuple[str, str], Any] = {}

    def url(self, proxy: str, kind: str) -> str:
        return f"http://127.0.0.1:{self.ports[(proxy, kind)]}"

    def start_proxies(self, gateway: str) -> None:
        for (proxy, kind), port in self.ports.items():
            main, admin = self.main[kind].url, self.admin_sites[kind].url
            sites = [("127.0.0.1", main), (WWW, main), (ADMIN, admin)]
            where = self.workdir / f"{proxy}-{kind}"
            if proxy == "nginx":
                self.proxies[(proxy, kind)] = Nginx(where, nginx_sites(port, gateway, sites), port)
            else:
                self.proxies[(proxy, kind)] = Caddy(where, caddy_sites(port, gateway, sites), port)
        _start_all(list(self.proxies.values()))

    def stop(self) -> None:
        for thing in [*self.proxies.values(), *self.admin_sites.values()]:
            thing.stop()


@pytest.fixture(scope="session")
def forward_auth(
    probes: dict[str, Probe],
    oidc_provider: OidcProvider,
    gateway_workdir: _Factory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ForwardAuthSetup, GatewayProcess]]:
    """nginx and Caddy (the doc's snippets) per app kind, and the gateway they ask."""
    setup = ForwardAuthSetup(tmp_path_factory.mktemp("forward-auth"), probes)
    _start_all(list(setup.admin_sites.values()))
    try:
        client = oidc_provider.register_client(
            redirect_uris=[f"{setup.url(p, k)}/_gateway/callback" for p, k in setup.ports],
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="client_secret_basic",
        )
        gw, _ = start_login_gateway(
            gateway_workdir, oidc_provider, "http://127.0.0.1:9", routes=FORWARD_AUTH_ROUTES,
            name="forward-auth", client=client, extra={"trusted_proxies": ["127.0.0.1/32"]},
        )  # fmt: skip
        setup.start_proxies(gw.url)
        yield setup, gw
    finally:
        setup.stop()
