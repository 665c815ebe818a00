"""The shipped alert rules and dashboard, checked by the real Prometheus (Debian `prometheus`).

promtool checks and unit-tests deploy/prometheus/gateway-rules.yaml; then a real Prometheus
server scrapes a real two-worker gateway under real traffic (a login, bearer calls, a
logout), evaluates the shipped rules (in a copy whose only change is `for: 0s`, so a test
need not wait minutes) and must fire the upstream alert once the upstream answers 5xx.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess
from tests.support.redis import RedisServer
from tests.test_metrics import parse
from tests.web.login_setup import start_login_gateway

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus" / "gateway-rules.yaml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "gateway-rules.test.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "oidc-gateway-dashboard.json"
BEARER_CALLS = 40


@pytest.fixture(autouse=True)
def prometheus_installed() -> None:
    """These tests need the real thing: a missing Prometheus fails them, never skips."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.fail("Prometheus is needed (Debian package prometheus; scripts/setup.sh test)")


def promtool(*args: str) -> str:
    done = subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    return done.stdout


def test_shipped_rules_pass_promtool_check() -> None:
    """`promtool check rules` accepts the shipped recording and alerting rules."""
    out = promtool("check", "rules", str(RULES))
    assert "SUCCESS" in out


def test_every_alert_fires_in_promtool_unit_tests() -> None:
    """`promtool test rules`: every shipped alert fires on a synthetic series that should
    page (and some stay quiet on series that should not); no alert goes untested."""
    promtool("test", "rules", str(RULE_TESTS))
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert alerts == tested


def dashboard_metrics() -> set[str]:
    """Every gateway metric name a dashboard query uses."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["definition"])
    return {name for expr in exprs for name in re.findall(r"\bgateway_[a-z0-9_]+\b", expr)}


class Prometheus:
    """A real Prometheus server scraping one target every second with the given rules."""

    def __init__(self, workdir: Path, target: str, rules: list[dict[str, Any]]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        rules_file = workdir / "rules.yaml"
        rules_file.write_text(yaml.safe_dump({"groups": rules}))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_file)],
            "scrape_configs": [
                {"job_name": "oidc-gateway", "static_configs": [{"targets": [target]}]}
            ],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        promtool("check", "config", str(config_file))
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            f"prometheus:{self.port}",
            [
                "prometheus",
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            log_path=workdir / "prometheus.log",
            ready_url=f"{self.url}/-/ready",
            start_timeout=60,
        )

    async def query(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it has no result."""
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.url}/api/v1/query", params={"query": expr}) as r:
                body = await r.json()
        assert "success" == body["status"], body
        result = body["data"]["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    async def wait_value(self, expr: str, expected: float, patience: float = 30.0) -> float | None:
        """Poll ``expr`` until it equals ``expected`` (scrapes are 1 s apart); return the last."""
        last = None
        for _ in range(int(patience / 0.5)):
            last = await self.query(expr)
            if last == expected:
                return last
            await asyncio.sleep(0.5)
        return last

    async def alerts(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.url}/api/v1/alerts") as r:
                body = await r.json()
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def make(target: str, rules: list[dict[str, Any]]) -> Prometheus:
        server = Prometheus(tmp_path / f"prometheus-{len(started)}", target, rules)
        started.append(server)
        server.process.start()
        return server

    yield make
    for server in started:
        server.process.stop()


def rules_without_waiting() -> list[dict[str, Any]]:
    """The shipped rule groups with every `for:` set to 0s (nothing else changed)."""
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    for group in groups:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    return groups


async def fresh_connection_get(url: str, headers: dict[str, str] | None = None) -> int:
    """One request on its own connection: SO_REUSEPORT spreads connections over workers."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url, headers=headers or {}, allow_redirects=False) as r:
            await r.read()
            return r.status


async def test_prometheus_sees_both_workers_and_fires_the_upstream_alert(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    prometheus_factory: Any,
) -> None:
    """A real Prometheus scraping a two-worker gateway: the counters move by what a login,
    40 bearer calls (on 40 connections, spread over both workers) and a logout did, summed
    over both workers in every scrape; every metric the dashboard queries exists; the
    upstream 5xx alert stays quiet while the upstream answers 200 and fires once it answers
    503."""
    rs = oidc_provider.register_client()
    dead = f"http://127.0.0.1:{free_port()}"
    routes = [
        {"name": "app", "path": "/app/", "upstream": upstream, "auth": "login"},
        {"name": "api", "path": "/api/", "upstream": upstream, "auth": "bearer"},
        {"name": "flaky", "path": "/status/", "upstream": upstream, "auth": "public"},
        {"name": "dead", "path": "/dead/", "upstream": dead, "auth": "public"},
    ]
    bearer = {
        "issuers": [
            {
                "issuer": oidc_provider.issuer,
                "audiences": ["urn:test:api"],
                "allow_insecure_http": True,
                "allow_private_network": True,
            }
        ]
    }

    def two_workers(config: dict[str, Any], **kwargs: Any) -> Any:
        return gateway_factory({**config, "listen": {"workers": 2}}, **kwargs)

    gw, _ = start_login_gateway(
        two_workers,
        oidc_provider,
        upstream,
        routes=routes,
        sessions={"store": "redis", "redis": {"url": redis_server.url, "key_prefix": "t-prom:"}},
        extra={
            "bearer": bearer,
            "rate_limit": {"per_minute": 2},
        },
    )
    for _ in range(200):  # both workers listening (the first answers health checks alone)
        if gw.log_text().count('"message":"listening"') == 2:
            break
        await asyncio.sleep(0.05)
    assert 2 == gw.log_text().count('"message":"listening"')
    internal = gw.config["metrics"]["listen"]
    prometheus = prometheus_factory(internal, rules_without_waiting())

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        assert 200 == (await http_login(browser, f"{gw.url}/app/start")).status
        page = await (await browser.get(f"{gw.url}/_gateway/logout")).text()
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        async with browser.post(
            f"{gw.url}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False
        ) as out:
            assert 302 == out.status
    token = oidc_provider.client_credentials_token(rs)
    statuses = await asyncio.gather(
        *(
            fresh_connection_get(f"{gw.url}/api/{i}", {"Authorization": f"Bearer {token}"})
            for i in range(BEARER_CALLS)
        )
    )
    assert [200] * BEARER_CALLS == statuses
    assert 502 == await fresh_connection_get(f"{gw.url}/dead/x")
    limited = [await fresh_connection_get(f"{gw.url}/_gateway/login") for _ in range(4)]
    assert 429 in limited
    for _ in range(10):
        assert 200 == await fresh_connection_get(f"{gw.url}/status/200")

    # Every scrape, whichever worker answers it, reports the sum over both workers.
    for _ in range(6):
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"http://{internal}/metrics") as r:
                scraped = parse(await r.text())
        api_ok = sum(
            v
            for (name, labels), v in scraped.items()
            if name == "gateway_requests_total" and ("route", "api") in labels
        )
        assert BEARER_CALLS == api_ok

    # Prometheus, scraping the same listener, sees the same sums.
    expectations = {
        'sum(gateway_requests_total{route="api",status="2xx"})': BEARER_CALLS,
        'sum(gateway_authentications_total{kind="bearer",outcome="ok"})': BEARER_CALLS,
        'sum(gateway_logins_completed_total{provider="op"})': 1,
        'sum(gateway_logouts_total{kind="rp"})': 1,
        'sum(gateway_provider_calls_total{endpoint="token_exchange",result="2xx"})': 1,
        'sum(gateway_upstream_errors_total{route="dead",kind="connect"})': 1,
        'sum(gateway_upstream_responses_total{route="flaky",status="2xx"})': 10,
        "count(gateway_build_info)": 1,
        "sum(gateway_websockets_open)": 0,
    }
    seen = {expr: await prometheus.wait_value(expr, want) for expr, want in expectations.items()}
    assert expectations == seen
    assert (await prometheus.query("sum(gateway_redis_duration_seconds_count)") or 0) > 0
    assert (await prometheus.query("sum(gateway_rate_limited_total)") or 0) >= 1

    # The dashboard queries only metrics that exist in a live scrape.
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{internal}/metrics") as r:
            names = {name for name, _ in parse(await r.text())}
    families = names | {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}
    assert set() == dashboard_metrics() - families

    # The upstream alert: quiet while the upstream answers 200, firing once it answers 503.
    await asyncio.sleep(3)  # a few evaluations over the healthy traffic
    firing = [
        a
        for a in await prometheus.alerts()
        if a["labels"]["alertname"].startswith("GatewayUpstream5xx")
    ]
    assert [] == firing
    alert = None
    for _ in range(60):
        assert 503 == await fresh_connection_get(f"{gw.url}/status/503")
        alert = next(
            (
                a
                for a in await prometheus.alerts()
                if a["labels"]["alertname"] == "GatewayUpstream5xxRatioHigh"
                and a["state"] == "firing"
            ),
            None,
        )
        if alert is not None:
            break
        await asyncio.sleep(0.5)
    assert alert is not None, await prometheus.alerts()
    assert "flaky" == alert["labels"]["route"]
    assert "page" == alert["labels"]["severity"]
