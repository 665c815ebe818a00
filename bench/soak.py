"""Soak: sustained mixed traffic against a gateway with real Redis and the real provider.

    python -m bench.soak --minutes 10 --users 20
    python -m bench.soak --attack --minutes 2 --users 10      # with unauthenticated abuse
    python -m bench.soak --attack --short                     # 30 s smoke run

Virtual users loop: log in, make session requests, call the API with a JWT and an opaque
token, log out, then check that the old cookie no longer works. Reports every unexpected
answer (the target is zero) and the gateway's RSS at start and end. With --attack a second
client floods unauthenticated navigations, 10 MiB bodies to gateway endpoints, idle and
half-sent connections and wrong admin tokens meanwhile (bench/abuse.py), and the report adds
the RSS during and after, and per abuse kind what the gateway answered. Not part of the test
suite; run it after changes to sessions, login, the proxy or the listener.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.abuse import Abuse
from tests.support.gateway import GatewayProcess
from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.redis import RedisServer
from tests.support.upstream import UpstreamServer

JSON = {"Accept": "application/json"}
ADMIN_TOKEN = "soak-admin-" + "a" * 40


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass  # the process ended
    return 0.0


def tree_rss_mib(pid: int) -> float:
    """RSS of ``pid`` and its direct children (the workers with listen.workers > 1)."""
    total = rss_mib(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                total += rss_mib(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


class Soak:
    """One gateway (2 workers, Redis sessions) with login and bearer routes, under load."""

    def __init__(self, workdir: Path, workers: int) -> None:
        self.redis = RedisServer(workdir / "redis")
        self.op = OidcProvider(workdir / "op")
        self.upstream = UpstreamServer(workdir / "upstream")
        self.gateway = GatewayProcess({"routes": []}, workdir / "gateway", name="soak")
        self.workers = workers
        self.internal_port = free_port()
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
            admin={"token": ADMIN_TOKEN},
            metrics={"listen": f"127.0.0.1:{self.internal_port}"},
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


async def sample_rss(pid: int, samples: list[float], every: float = 1.0) -> None:
    while True:
        samples.append(tree_rss_mib(pid))
        await asyncio.sleep(every)


async def run(args: argparse.Namespace) -> int:
    minutes = 0.5 if args.short else args.minutes
    abuse: Abuse | None = None
    during: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gateway-soak-") as tmp:
        soak = Soak(Path(tmp), args.workers)
        soak.start()
        try:
            pid = soak.gateway.pid
            start_rss = tree_rss_mib(pid)
            deadline = time.monotonic() + minutes * 60
            sampler = asyncio.create_task(sample_rss(pid, during))
            abusers: list[asyncio.Task[None]] = []
            if args.attack:
                internal = f"http://127.0.0.1:{soak.internal_port}"
                abuse = Abuse(soak.gateway.url, soak.gateway.port, internal, deadline)
                abusers = abuse.tasks(args.attack_scale)
            await asyncio.gather(*(soak.user(i, deadline) for i in range(args.users)))
            await asyncio.gather(*abusers)
            sampler.cancel()
            end_rss = tree_rss_mib(pid)
            await asyncio.sleep(args.settle)
            settled_rss = tree_rss_mib(pid)
        finally:
            soak.stop()
    print(f"duration: {minutes} min, users: {args.users}, workers: {args.workers}")
    print(f"requests: {dict(soak.counts)}")
    print(
        f"gateway RSS (process and workers): start {start_rss:.1f} MiB, during max "
        f"{max(during, default=0):.1f} MiB, end {end_rss:.1f} MiB, "
        f"{args.settle:.0f} s later {settled_rss:.1f} MiB"
    )
    lost = sum(n for e, n in soak.errors.items() if e.startswith("session request: 401"))
    print(f"errors: {sum(soak.errors.values())} (lost sessions: {lost})")
    for error, count in soak.errors.most_common():
        print(f"  {count} x {error}")
    if abuse is not None:
        print("abuse (what the gateway answered):")
        for kind, seen in abuse.seen.items():
            print(f"  {kind}: {dict(seen.most_common())}")
    return 1 if soak.errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--attack", action="store_true", help="abuse the gateway meanwhile")
    parser.add_argument(
        "--attack-scale", type=int, default=2, help="abusers per kind (x20 for held sockets)"
    )
    parser.add_argument("--short", action="store_true", help="a 30 s smoke run")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before 'after'")
    raise SystemExit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
