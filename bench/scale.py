#!/usr/bin/env python3
"""Scale figures of the gateway's sessions (run through bench/scale.sh, which starts the servers).

1. Redis memory per 100,000 sessions, made by the gateway's own SessionManager.create.
2. Gateway memory per 100,000 sessions: the Redis-store gateway A (1 worker) before and
   after serving 100,000 distinct session cookies; the memory store measured in-process
   (the gateway's MemoryStore + SessionManager holding 100,000 sessions).
3. Revoking every session of one user among 1,000,000: time and Redis commands (INFO
   commandstats delta) of SessionManager.destroy_by_sub. The 1,000,000 are pipelined raw
   writes in the manager's own key layout (sess: value of a real sealed session's size,
   idx:sub: and idx:sid: sets with TTLs); the revoked user's sessions are real ones.
4. Back-channel logout propagation between two instances sharing Redis: sign in through
   A, end the session at the OP (which POSTs the logout token to B), and time until A
   refuses the cookie; the same with B's admin revoke endpoint.

Writes the markdown of the figures to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.cookiejar
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from login import cookie_header, login, op_logout

from gateway.config.model import Sessions
from gateway.crypto import KeyRing
from gateway.secret import Secret
from gateway.sessions.codec import SessionMeta, Ticket, record_to_json, seal_session
from gateway.sessions.layout import index_member, sess_key, sid_index, sub_index
from gateway.sessions.manager import SessionManager
from gateway.sessions.memory import MemoryStore
from gateway.sessions.redis import RedisStore
from gateway.types import SessionRecord, TokenSet

ENV = os.environ
PREFIX = "gw:"


def say(*args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def pid_of(name: str) -> int:
    with open(Path(ENV["RUN_DIR"], f"{name}.pid")) as f:
        return int(f.read())


def b64(n: int) -> str:
    return secrets.token_urlsafe(n * 3 // 4)[:n]


def record(issuer: str, sub: str, now: float) -> SessionRecord:
    """A session like the bench OP's: its id_token claims, an opaque access token, an id_token."""
    claims = {
        "sub": sub, "email": f"{sub}@example.test", "email_verified": True,
        "name": f"Test User {sub}", "preferred_username": sub, "groups": ["users"],
        "iss": issuer, "aud": "bench-scale", "iat": int(now), "exp": int(now) + 3600,
        "auth_time": int(now), "sid": b64(43), "nonce": b64(43), "at_hash": b64(22),
    }  # fmt: skip
    id_token = f"{b64(120)}.{b64(560)}.{b64(342)}"  # the OP's RS256 id_tokens are ~1,000 chars
    tokens = TokenSet(
        access_token=b64(43), id_token=id_token, expires_at=now + 3600,
        scope="openid email profile groups",
    )  # fmt: skip
    return SessionRecord(
        provider="op", issuer=issuer, subject=sub, sid=claims["sid"], claims=claims,
        tokens=tokens, created_at=now, last_seen=now, expires_at=now + 28800,
    )  # fmt: skip


def settings(db: int) -> Sessions:
    return Sessions.model_validate(
        {
            "store": "redis",
            "redis": {"url": f"redis://127.0.0.1:{ENV['REDIS_PORT']}/{db}", "key_prefix": PREFIX},
            "secrets": [ENV["SESSION_SECRET"]],
            "cookie_secure": False,
        }
    )


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.issuer = f"http://127.0.0.1:{ENV['OP_PORT']}"
        self.settings = settings(args.db)
        self.keyring = KeyRing([Secret(ENV["SESSION_SECRET"])])
        self.redis = aioredis.Redis(port=int(ENV["REDIS_PORT"]), db=args.db)
        self.out: list[str] = []

    def manager(self, store: Any) -> SessionManager:
        return SessionManager(store, self.keyring, self.settings, time.time)

    async def used_memory(self) -> int:
        await self.redis.execute_command("MEMORY", "PURGE")
        info = await self.redis.info("memory")
        return int(info["used_memory"])

    async def create_many(
        self, manager: SessionManager, subs: list[str], width: int = 64
    ) -> list[str]:
        tickets: list[str] = []
        now = time.time()
        for start in range(0, len(subs), width):
            batch = subs[start : start + width]
            tickets += await asyncio.gather(
                *(manager.create(record(self.issuer, s, now)) for s in batch)
            )
        return tickets

    # -- 1 and 2 ----------------------------------------------------------------------------

    async def memory_per_100k(self) -> None:
        n = self.args.sessions
        await self.redis.flushdb()
        store = RedisStore.from_config(self.settings.redis)
        manager = self.manager(store)
        before = await self.used_memory()
        started = time.perf_counter()
        tickets = await self.create_many(manager, [f"user{i}" for i in range(n)])
        took = time.perf_counter() - started
        after = await self.used_memory()
        keys = await self.redis.dbsize()
        sample = await self.redis.strlen(PREFIX + sess_key(Ticket.parse(tickets[0]).handle))  # type: ignore[union-attr]
        await store.close()
        per = (after - before) / n
        self.out += [
            f"- **Redis memory**: {n:,} sessions (one per user, each with its sub and sid index) "
            f"took {(after - before) / 2**20:,.1f} MiB of `used_memory`, **{per:,.0f} bytes per "
            f"session** ({per * 100_000 / 2**20:,.1f} MiB per 100,000); {keys:,} keys; "
            f"sealed value "
            f"{sample:,} bytes. Made with `SessionManager.create` (64 at a time) at "
            f"{n / took:,.0f} sessions/s.",
        ]
        say(self.out[-1])
        await self.serve_distinct(tickets)
        await self.memory_store(n)

    async def serve_distinct(self, tickets: list[str]) -> None:
        """Gateway A (Redis store, 1 worker) before/after one request per distinct session."""
        pid = pid_of("gw-a")
        url = f"http://127.0.0.1:{ENV['GW_A_PORT']}/"
        before = rss_kib(pid)
        statuses: dict[int, int] = {}
        started = time.perf_counter()
        queue = iter(tickets)
        connector = aiohttp.TCPConnector(limit=50)
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:

            async def worker() -> None:
                for ticket in queue:
                    async with http.get(url, headers={"Cookie": f"gateway_session={ticket}"}) as r:
                        await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1

            await asyncio.gather(*(worker() for _ in range(50)))
        took = time.perf_counter() - started
        after = rss_kib(pid)
        self.out.append(
            "- **Gateway RSS, Redis store**: gateway A (1 worker) "
            f"{before / 1024:,.1f} MiB before and "
            f"{after / 1024:,.1f} MiB after one request with each of the {len(tickets):,} sessions "
            f"({len(tickets) / took:,.0f} req/s, statuses {statuses}): the gateway keeps no "
            "session at rest, only its short-lived cache of opened sessions "
            f"(`sessions.cache_ttl` {self.settings.cache_ttl:g} s, at most 10,000 entries)."
        )
        say(self.out[-1])

    async def memory_store(self, n: int) -> None:
        """The memory store's cost, measured in this process with the gateway's own classes."""
        gc.collect()
        before = rss_kib()
        store = MemoryStore(max_entries=2 * n)
        manager = self.manager(store)
        await self.create_many(manager, [f"user{i}" for i in range(n)], width=1000)
        gc.collect()
        after = rss_kib()
        self.out.append(
            f"- **Gateway RSS, memory store**: {n:,} sessions in the gateway's `MemoryStore` "
            f"(made by `SessionManager.create`, measured in-process) add "
            f"**{(after - before) / 1024:,.1f} MiB** ({(after - before) * 1024 / n:,.0f} bytes per "
            "session); note `MemoryStore` keeps at most 100,000 entries by default."
        )
        say(self.out[-1])
        await manager.close()

    # -- 3 ----------------------------------------------------------------------------------

    def template_value(self) -> tuple[bytes, float]:
        now = time.time()
        rec = record(self.issuer, "filler", now)
        ticket = Ticket.new()
        return seal_session(self.keyring, ticket, record_to_json(rec), SessionMeta.of(rec)), now

    def fill(self, total: int) -> float:
        """Pipe `total` filler sessions into Redis in the manager's layout (redis-cli --pipe)."""
        value, now = self.template_value()
        exp = now + 28800
        ttl_ms = b"%d" % (28800 * 1000)

        def cmd(*parts: bytes) -> bytes:
            out = [b"*%d\r\n" % len(parts)]
            for p in parts:
                out.append(b"$%d\r\n%s\r\n" % (len(p), p))
            return b"".join(out)

        started = time.perf_counter()
        proc = subprocess.Popen(
            ["redis-cli", "-p", ENV["REDIS_PORT"], "-n", str(self.args.db), "--pipe"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert proc.stdin is not None
        p = PREFIX.encode()
        chunk: list[bytes] = []
        for i in range(total):
            handle = secrets.token_hex(32)
            member = index_member(handle, exp).encode()
            sub = p + sub_index(self.issuer, f"filler{i}").encode()
            sid = p + sid_index(self.issuer, secrets.token_urlsafe(32)).encode()
            chunk.append(cmd(b"SET", p + sess_key(handle).encode(), value, b"PX", ttl_ms))
            chunk.append(cmd(b"SADD", sub, member) + cmd(b"PEXPIRE", sub, ttl_ms))
            chunk.append(cmd(b"SADD", sid, member) + cmd(b"PEXPIRE", sid, ttl_ms))
            if len(chunk) >= 30_000:
                proc.stdin.write(b"".join(chunk))
                chunk.clear()
        proc.stdin.write(b"".join(chunk))
        proc.stdin.close()
        result = proc.stdout.read().decode() if proc.stdout else ""
        proc.wait()
        if "errors: 0" not in result:
            raise SystemExit(f"redis-cli --pipe: {result}")
        return time.perf_counter() - started

    async def commandstats(self) -> dict[str, int]:
        info = await self.redis.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}

    async def revoke(self) -> None:
        total, counts = self.args.total, self.args.user_sessions
        await self.redis.flushdb()
        store = RedisStore.from_config(self.settings.redis)
        manager = self.manager(store)
        targets = {f"target{c}": c for c in counts}
        for sub, c in targets.items():
            await self.create_many(manager, [sub] * c)
        filler = total - sum(counts)
        say(f"piping {filler:,} filler sessions into redis")
        took = self.fill(filler)
        keys = await self.redis.dbsize()
        mem = await self.used_memory()
        self.out.append(
            f"- **Revocation among {total:,} sessions** ({keys:,} keys, {mem / 2**30:.2f} GiB "
            f"`used_memory`; filled in {took:.0f} s):"
        )
        for sub, c in targets.items():
            await self.redis.config_resetstat()
            started = time.perf_counter()
            ended = await manager.destroy_by_sub(self.issuer, sub)
            took = time.perf_counter() - started
            stats = await self.commandstats()
            stats.pop("config|resetstat", None)
            stats.pop("info", None)
            calls = ", ".join(f"{k.upper()} {v}" for k, v in sorted(stats.items()))
            self.out.append(
                f"  - a user with {c:,} sessions: `destroy_by_sub` ended {ended:,} in "
                f"**{took * 1000:,.1f} ms** with {sum(stats.values()):,} Redis commands ({calls})"
            )
            say(self.out[-1])
        await store.close()
        await self.redis.flushdb()

    # -- 4 ----------------------------------------------------------------------------------

    def poll_until_refused(self, url: str, cookie: str, stop_at: float) -> tuple[float, int, int]:
        """GET url in a loop on one keep-alive connection: (first non-200 time, status, polls)."""
        import http.client

        host, port = url.split("//")[1].split("/")[0].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        polls = 0
        while time.perf_counter() < stop_at:
            conn.request("GET", "/", headers={"Cookie": cookie})
            resp = conn.getresponse()
            resp.read()
            polls += 1
            if resp.status != 200:
                return time.perf_counter(), resp.status, polls
        return float("nan"), 0, polls

    def one_logout(self, user: str, how: str) -> tuple[float, float, int]:
        a = f"http://127.0.0.1:{ENV['GW_A_PORT']}"
        b = f"http://127.0.0.1:{ENV['GW_B_PORT']}"
        jar = http.cookiejar.CookieJar()
        login(a + "/", user, jar)
        cookie = cookie_header(jar, "gateway_session")
        result: list[tuple[float, int, int]] = []
        ready = threading.Event()

        def poll() -> None:
            ready.set()
            result.append(self.poll_until_refused(a + "/", cookie, time.perf_counter() + 15))

        thread = threading.Thread(target=poll)
        thread.start()
        ready.wait()
        time.sleep(0.3)  # A's cache holds the session now
        started = time.perf_counter()
        if how == "backchannel":
            status = op_logout(self.issuer, jar)
        else:
            req = urllib.request.Request(
                b + "/_gateway/admin/sessions/revoke",
                data=json.dumps({"sub": user}).encode(),
                headers={
                    "Authorization": f"Bearer {ENV['ADMIN_TOKEN']}",
                    "Content-Type": "application/json",
                },
            )  # fmt: skip
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = resp.status
        returned = time.perf_counter()
        thread.join()
        refused_at, refused_status, _ = result[0]
        if status != 200 or refused_status == 0:
            raise SystemExit(
                f"{how} logout for {user}: answered {status}, A refused: {refused_status}"
            )
        return (refused_at - started) * 1000, (returned - started) * 1000, refused_status

    def propagation(self) -> None:
        rounds = self.args.rounds
        for how, what in (
            ("backchannel", "OP logout (the OP POSTs a logout token to B)"),
            ("admin", "B's admin endpoint (`POST /_gateway/admin/sessions/revoke`)"),
        ):
            times = [
                self.one_logout(f"{how}{k}-{secrets.token_hex(3)}", how) for k in range(rounds)
            ]
            refused = [t[0] for t in times]
            answered = [t[1] for t in times]
            self.out.append(
                f"- **Logout propagation, {what}**: session made through A, A polled with its "
                "cookie "
                f"on one keep-alive connection: A refused it (HTTP {times[0][2]}) "
                f"**{statistics.median(refused):.1f} ms** after the logout request was sent "
                f"(median of {rounds}; max {max(refused):.1f} ms); the logout request itself took "
                f"{statistics.median(answered):.1f} ms to answer."
            )
            say(self.out[-1])


async def main_async(args: argparse.Namespace) -> None:
    bench = Bench(args)
    if "memory" in args.parts:
        await bench.memory_per_100k()
    if "revoke" in args.parts:
        await bench.revoke()
    if "propagation" in args.parts:
        await asyncio.to_thread(bench.propagation)
    await bench.redis.aclose()
    print("\n".join(bench.out))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--total", type=int, default=1_000_000)
    ap.add_argument("--user-sessions", type=int, nargs="+", default=[10, 1000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--db", type=int, default=1, help="redis database used (flushed)")
    ap.add_argument("--parts", nargs="+", default=["memory", "revoke", "propagation"])
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
