"""Ending sessions on a logout (back-channel, front-channel, admin) and telling upstreams.

A route may set ``logout_notify_url``: when a session of a provider that route can log in
with dies, the gateway POSTs ``{"sub", "sid", "issuer", "reason"}`` there, best effort
and time-limited, so a legacy app can drop its own state. Sessions are found through the
(issuer, sid) and (issuer, sub) indexes only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from gateway.config.model import Config
from gateway.idp.http import display_url
from gateway.login.provider import ProviderClient
from gateway.sessions.manager import LoadedSession, SessionManager, SessionSummary
from gateway.types import TokenSet
from gateway.web.keys import SERVICES

log = logging.getLogger("gateway.logout")

NOTIFY_TIMEOUT = 5.0  # seconds per notice; a slow legacy app never holds up a logout


@dataclass(frozen=True, slots=True)
class LogoutNotice:
    """One ended session as an upstream is told about it."""

    provider: str
    issuer: str
    sub: str
    sid: str | None
    reason: str

    def body(self) -> bytes:
        data = {"sub": self.sub, "sid": self.sid, "issuer": self.issuer, "reason": self.reason}
        return json.dumps(data, separators=(",", ":")).encode()


def notices_of(sessions: Iterable[SessionSummary], reason: str) -> list[LogoutNotice]:
    """One notice per distinct (provider, issuer, sub, sid) among the ended sessions."""
    seen = {(s.provider, s.issuer, s.subject, s.sid) for s in sessions}
    return [LogoutNotice(p, i, sub, sid, reason) for p, i, sub, sid in sorted(seen, key=str)]


def notify_urls(config: Config, provider: str) -> list[str]:
    """The notify URLs of routes that can log in with ``provider`` (no pin means any)."""
    urls = {
        r.logout_notify_url
        for r in config.routes
        if r.logout_notify_url and r.provider in (None, provider)
    }
    return sorted(urls)


def wants_notices(config: Config) -> bool:
    return any(r.logout_notify_url for r in config.routes)


async def send_notices(
    http: aiohttp.ClientSession, config: Config, notices: Iterable[LogoutNotice]
) -> None:
    """POST every notice to its URLs concurrently; failures are logged, never raised."""
    sends = [
        _send(http, url, notice)
        for notice in notices
        for url in notify_urls(config, notice.provider)
    ]
    await asyncio.gather(*sends)


async def _send(http: aiohttp.ClientSession, url: str, notice: LogoutNotice) -> None:
    where = display_url(url)
    try:
        async with http.post(
            url,
            data=notice.body(),
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT),
            allow_redirects=False,
        ) as response:
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("logout notice to %s failed: %s", where, type(exc).__name__)
        return
    level = logging.INFO if response.status < 400 else logging.WARNING
    log.log(level, "logout notice to %s: HTTP %d", where, response.status)


class LogoutNotifier:
    """Sends notices (and token revocations) in the background, so logout answers do not
    wait for upstreams or the provider."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[Any]] = set()

    def send(
        self, http: aiohttp.ClientSession, config: Config, notices: list[LogoutNotice]
    ) -> None:
        if not notices:
            return
        self.spawn(send_notices(http, config, notices))

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run best-effort work (it logs its own failures) without anyone waiting for it."""
        task = asyncio.create_task(work)
        self._pending.add(task)  # a strong reference until it is done
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for notices still on their way (each is time-limited)."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=NOTIFY_TIMEOUT + 1)


NOTIFIER: web.AppKey[LogoutNotifier] = web.AppKey("logout_notifier", LogoutNotifier)


async def drain_notices(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: let pending notices finish before the HTTP client closes."""
    yield
    await app[NOTIFIER].drain()


async def end_sessions(
    app: web.Application, issuer: str, *, sid: str | None, sub: str | None, reason: str
) -> int:
    """End the sessions a logout names, notify upstreams in the background; return how many."""
    services = app[SERVICES]
    login = services.login
    if login is None:
        return 0
    notify = wants_notices(services.config)
    revoke = services.config.sessions.revoke_tokens_on_admin_end
    ended, doomed = await end_matching(
        login.manager, issuer, sid=sid, sub=sub, collect=notify or revoke
    )
    if notify:
        app[NOTIFIER].send(services.http, services.config, notices_of(doomed, reason))
    if revoke:
        app[NOTIFIER].spawn(revoke_ended(login.providers, doomed))
    return ended


async def revoke_ended(
    providers: Mapping[str, ProviderClient], ended: Iterable[SessionSummary]
) -> int:
    """Revoke the tokens of ended sessions at their providers (when the summaries carry
    them: sessions.revoke_tokens_on_admin_end); failures are logged. Returns how many."""
    revoked = 0
    for summary in ended:
        provider = providers.get(summary.provider)
        held = summary.tokens or {}
        if provider is None or not held.get("access_token"):
            continue
        tokens = TokenSet(held["access_token"], refresh_token=held.get("refresh_token"))
        revoked += await provider.revoke_tokens(tokens)
    return revoked


async def end_matching(
    manager: SessionManager, issuer: str, *, sid: str | None, sub: str | None, collect: bool
) -> tuple[int, list[SessionSummary]]:
    """End the sessions of a sid or sub; return how many, and (if ``collect``) which.

    With a sid only that provider session ends (plus the user's sessions that carry no
    sid, which cannot be told apart); with a sub alone every session of the user ends.
    """
    doomed: list[SessionSummary] = []
    if sid is not None:
        if collect:
            doomed += await manager.list_by_sid(issuer, sid)
        ended = await manager.destroy_by_sid(issuer, sid)
        if sub is not None:
            sidless = [s for s in await manager.list_by_sub(issuer, sub) if s.sid is None]
            doomed += sidless
            ended += sum([await manager.destroy_by_handle(s.handle) for s in sidless])
        return ended, doomed
    if sub is not None:
        if collect:
            doomed += await manager.list_by_sub(issuer, sub)
        return await manager.destroy_by_sub(issuer, sub), doomed
    return 0, doomed


def notify_ended(app: web.Application, ended: LoadedSession, reason: str) -> None:
    """Tell upstreams about one session ended elsewhere (RP-initiated logout)."""
    services = app[SERVICES]
    if wants_notices(services.config):
        record = ended.record
        notice = LogoutNotice(record.provider, record.issuer, record.subject, record.sid, reason)
        app[NOTIFIER].send(services.http, services.config, [notice])
