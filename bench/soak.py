"""Soak: sustained mixed traffic against a gateway with real Redis and the real provider.

    python -m bench.soak --minutes 10 --users 20

Virtual users loop: log in, make session requests, call the API with a JWT and an opaque
token, log out, then check that the old cookie no longer works. Reports every unexpected
answer (the target is zero) and the gateway's RSS at start and end. Not part of the test
suite; run it after changes to sessions, login or the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.support.gateway import GatewayProcess
from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.support.redis import RedisServer
from tests.support.upstream import UpstreamServer

JSON = {"Accept": "application/json"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Soak:
    """One gateway (2 workers, Redis sessions) with login and bearer routes, under load."""

    def __init__(self, workdir: Path, workers: int) -> None:
        self.redis = RedisServer(workdir / "redis")
        self.op = OidcProvider(workdir / "op")
        self.upstream = UpstreamServer(workdir / "upstream")
        self.gateway = GatewayProcess({"routes": []}, workdir / "gateway", name="soak")
        self.workers = workers
        self.errors: collections.Counter[str] = collections.Counter()
        self.counts: collections.Counter[str] = collections.Counter()

    def start(self) -> None:
        self.redis.start()
        self.op.start()
        self.upstream.start()
        gw = self.gateway
        client = self.op.register_client(
            redirect_uris=[f"{gw.url}/_gateway/callback"],
            post_logout_redirect_uris=[f"{gw.url}/_gateway/logged-out"],
            grant_types=["authorization_code", "refresh_token"],
        )
        self.api_client = self.op.register_client()
        gw.config["listen"]["workers"] = self.workers
        gw.config.update(
            logging={"level": "warning", "access_log": False},
            rate_limit={"enabled": False},
            routes=[
                {"path": "/", "upstream": self.upstream.url, "auth": "login"},
                {"path": "/api", "upstream": self.upstream.url, "auth": "bearer"},
            ],
            providers=[
                {
                    "name": "op",
                    "issuer": self.op.issuer,
                    "client_id": client["client_id"],
                    "client_secret": client["client_secret"],
                    "allow_insecure_http": True,
                    "allow_private_network": True,
                }
            ],
            sessions={
                "store": "redis",
                "redis": {"url": self.redis.url},
                "cookie_secure": False,
                "secrets": ["soak-" + "k" * 40],
            },
            bearer={
                "issuers": [
                    {
                        "issuer": self.op.issuer,
                        "audiences": ["urn:test:api"],
                        "allow_insecure_http": True,
                        "allow_private_network": True,
                        "introspection": {
                            "client_id": self.api_client["client_id"],
                            "client_secret": self.api_client["client_secret"],
                        },
                    }
                ]
            },
        )
        gw.start()

    def stop(self) -> None:
        for part in (self.gateway, self.upstream, self.op, self.redis):
            part.stop()

    def expect(self, what: str, status: int, wanted: int) -> None:
        self.counts[what] += 1
        if status != wanted:
            self.errors[f"{what}: {status} (wanted {wanted})"] += 1

    async def user(self, n: int, deadline: float) -> None:
        jwt = self.op.client_credentials_token(self.api_client, resource="urn:test:api")
        opaque = self.op.client_credentials_token(self.api_client, resource="urn:test:api-opaque")
        base = self.gateway.url
        while time.monotonic() < deadline:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
                landed = await http_login(s, f"{base}/home", user=f"soak{n}")
                self.expect("login", landed.status, 200)
                for _ in range(20):
                    async with s.get(f"{base}/page", headers=JSON) as r:
                        self.expect("session request", r.status, 200)
                for token in (jwt, opaque):
                    async with s.get(
                        f"{base}/api/x", headers={"Authorization": f"Bearer {token}"}
                    ) as r:
                        self.expect("bearer request", r.status, 200)
                cookie = {c.key: c.value for c in s.cookie_jar if "gateway_session" in c.key}
                await self.logout(s, base)
            async with (
                aiohttp.ClientSession(cookies=cookie) as stale,
                stale.get(f"{base}/page", headers=JSON) as r,
            ):
                self.expect("request after logout", r.status, 401)

    async def logout(self, session: aiohttp.ClientSession, base: str) -> None:
        page = await (await session.get(f"{base}/_gateway/logout")).text()
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        async with session.post(
            f"{base}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False
        ) as r:
            self.expect("logout", r.status, 302)


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="gateway-soak-") as tmp:
        soak = Soak(Path(tmp), args.workers)
        soak.start()
        try:
            start_rss = rss_mib(soak.gateway.pid)
            deadline = time.monotonic() + args.minutes * 60
            await asyncio.gather(*(soak.user(i, deadline) for i in range(args.users)))
            end_rss = rss_mib(soak.gateway.pid)
        finally:
            soak.stop()
    print(f"requests: {dict(soak.counts)}")
    print(f"gateway RSS (supervisor process): start {start_rss:.1f} MiB, end {end_rss:.1f} MiB")
    print(f"errors: {sum(soak.errors.values())}")
    for error, count in soak.errors.most_common():
        print(f"  {count} x {error}")
    return 1 if soak.errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    raise SystemExit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
