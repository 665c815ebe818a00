"""What browser login needs at request time: providers, the session manager, cookies."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway import metrics
from gateway.config.model import Config
from gateway.crypto import KeyRing, random_token
from gateway.errors import LoginError, ProviderUnavailable
from gateway.login.provider import ProviderClient
from gateway.login.token_endpoint import RefreshRefused
from gateway.policy.redirects import safe_return_url
from gateway.sessions.manager import LoadedSession, SessionManager
from gateway.sessions.shared import SharedState
from gateway.types import Principal, SessionRecord
from gateway.web.cookies import CookiePolicy
from gateway.web.keys import SERVICES, VIEW
from gateway.web.pages.respond import render_page

log = logging.getLogger("gateway.login")

LOGIN_STARTS = "login-starts"  # the rate limiter's bucket for every login start
_TOO_MANY_STARTS = (
    "Too many sign-ins were started from your network in the last minute. "
    "Wait a minute, then try again."
)


@dataclass
class LoginServices:
    """Providers by name, the session manager, the key ring, the cookie policy, and the
    sealed shared state (the logout-token replay cache)."""

    config: Config
    providers: dict[str, ProviderClient]
    manager: SessionManager
    keyring: KeyRing
    cookies: CookiePolicy
    shared: SharedState

    @property
    def cookie_names(self) -> frozenset[str]:
        return frozenset({self.cookies.session_name, self.cookies.login_name})

    def origin(self, request: web.Request) -> str:
        """The browser-facing origin of this request: scheme://host[:port]."""
        if self.config.public_url:
            parts = urlsplit(self.config.public_url)
            return f"{parts.scheme}://{parts.netloc}"
        view = request[VIEW]
        return f"{view.scheme}://{view.host}"

    def callback_url(self, request: web.Request) -> str:
        return self.origin(request) + self.config.prefix.rstrip("/") + "/callback"

    def safe_target(self, request: web.Request, candidate: str | None) -> str:
        return safe_return_url(candidate, self.origin(request), self.config.allowed_redirect_hosts)

    async def start_login(
        self,
        request: web.Request,
        provider: ProviderClient,
        return_to: str,
        *,
        prompt: str | None = None,
    ) -> web.Response:
        """Send the browser to the provider, reusing its pending login if it has one.

        Every start (the login endpoint or a navigation to a protected route) spends one
        of the client address's ``rate_limit.per_minute`` login starts: over it, 429 and
        nothing is written. A ``prompt`` ("Use another account") always starts a fresh login.
        """
        limiter = request.app[SERVICES].rate_limiter
        if limiter is not None:
            limiter.check(request[VIEW].client_ip, LOGIN_STARTS, public=_TOO_MANY_STARTS)
        if self.cookies.session_ambiguous(request):
            return self._conflicting_session_cookies(request)
        redirect_uri = self.callback_url(request)
        target = self.safe_target(request, return_to)
        binding = self.cookies.login_binding(request)
        pending = await self.manager.pending_login(binding) if binding else None
        if binding is None or pending is None:
            # Never adopt a binding the client made up: only one this gateway handed out
            # (and still holds a pending login for) may be reused.
            binding = random_token()
        now = time.time()
        ttl = self._reusable_for(pending, provider, redirect_uri, now) if prompt is None else 0.0
        reused = pending is not None and ttl > 0
        if pending is not None and reused:
            state = pending
            if state["return_to"] != target:
                state["return_to"] = target  # the page the user asked for last
                await self.manager.put_login_state(binding, state, ttl)
        else:
            state = {
                "state": random_token(),
                "provider": provider.name,
                "nonce": random_token(),
                "verifier": random_token(48) if provider.config.pkce else None,
                "return_to": target,
                "redirect_uri": redirect_uri,
                "started": now,
            }
            # Under the same key as a pending login it replaces: one login per browser.
            ttl = self.config.sessions.login_state_ttl
            await self.manager.put_login_state(binding, state, ttl)
        url = await provider.authorization_url(
            redirect_uri=redirect_uri,
            state=state["state"],
            nonce=state["nonce"],
            verifier=state["verifier"],
            prompt=prompt,
        )
        response = web.HTTPFound(url, headers={"Cache-Control": "no-store"})
        self.cookies.set_login_binding(
            response, binding, ttl, cross_site_post=provider.config.response_mode == "form_post"
        )
        log.info("login started", extra={"provider": provider.name, "reused": reused})
        metrics.LOGINS_STARTED.labels(provider.name).inc()
        return response

    def _reusable_for(
        self,
        pending: dict[str, Any] | None,
        provider: ProviderClient,
        redirect_uri: str,
        now: float,
    ) -> float:
        """Seconds the pending login has left if this start can reuse it, else 0."""
        if pending is None or pending.get("provider") != provider.name:
            return 0.0
        if pending.get("redirect_uri") != redirect_uri:
            return 0.0  # reached under another origin: its callback would go elsewhere
        remaining = self.config.sessions.login_state_ttl - (now - float(pending["started"]))
        return remaining if remaining > 1 else 0.0

    def _conflicting_session_cookies(self, request: web.Request) -> web.Response:
        """A page instead of a login that the other session cookie would shadow again."""
        log.warning("refused a login: the request carries more than one session cookie")
        response = render_page(
            request,
            "error.html",
            {"code": "conflicting_cookies", "message": "", "home_url": "/"},
            status=400,
        )
        self.cookies.clear_session(response)
        return response

    async def session_principal(self, request: web.Request) -> Principal | None:
        """The principal of the request's session cookie, refreshed if needed; None if none."""
        ticket = self.cookies.session_ticket(request)
        if not ticket:
            return None
        loaded = await self.manager.load(ticket)
        if loaded is None:
            metrics.authentication("session", "expired")
            return None
        loaded = await self._maybe_refresh(loaded)
        if loaded is None:
            return None
        metrics.authentication("session", "ok")
        return principal_of(loaded)

    def _needs_refresh(self, loaded: LoadedSession, now: float) -> bool:
        tokens = loaded.record.tokens
        return bool(
            tokens.refresh_token
            and tokens.expires_at is not None
            and tokens.expires_at - now <= self.config.sessions.refresh_before
            and loaded.record.provider in self.providers
        )

    async def _maybe_refresh(self, loaded: LoadedSession) -> LoadedSession | None:
        """Refresh the access token when it is about to expire; one refresh per session."""
        if not self._needs_refresh(loaded, time.time()):
            return loaded
        async with self.manager.refresh_lock(
            loaded.session_id, wait=self.config.sessions.refresh_lock_wait
        ) as holder:
            # Whether we waited or got the lock, another request (maybe on another
            # instance) may have refreshed already: decide again on the stored record.
            current = await self.manager.reload(loaded)
            if current is None or not holder or not self._needs_refresh(current, time.time()):
                return current
            return await self._refresh(current, self.providers[current.record.provider])

    async def _refreshed_id_token_ok(
        self, loaded: LoadedSession, provider: ProviderClient, id_token: str
    ) -> bool:
        """OIDC Core 12.2: a refreshed id_token is validated and must name the same user."""
        try:
            claims = await provider.validate_id_token(id_token, nonce=None)
        except LoginError as exc:
            log.warning("session ended: the refreshed id_token was refused: %s", exc)
            return False
        if claims.get("sub") != loaded.record.subject:
            log.warning("session ended: the refreshed id_token names another subject")
            return False
        return True

    async def _refresh(
        self, loaded: LoadedSession, provider: ProviderClient
    ) -> LoadedSession | None:
        tokens = loaded.record.tokens
        now = time.time()
        if tokens.refresh_token is None:
            return loaded
        try:
            fresh = await provider.refresh(tokens.refresh_token)
        except RefreshRefused as exc:
            log.info("session ended: %s", exc, extra={"provider": provider.name})
            metrics.authentication("session", "ended")
            await self.manager.destroy(loaded.session_id)
            return None
        except ProviderUnavailable as exc:
            expired_for = now - (tokens.expires_at or now)
            if expired_for > self.config.sessions.refresh_grace:
                raise
            log.warning("refresh failed, keeping the session for now: %s", exc)
            metrics.PROVIDER_ERRORS.inc()
            return loaded
        if fresh.id_token and not await self._refreshed_id_token_ok(
            loaded, provider, fresh.id_token
        ):
            await self.manager.destroy(loaded.session_id)
            return None
        fresh.refresh_token = fresh.refresh_token or tokens.refresh_token
        fresh.id_token = fresh.id_token or tokens.id_token
        loaded.record.tokens = fresh
        if not await self.manager.save(loaded):
            return None  # the session ended (a logout) while it was being refreshed
        log.info("session refreshed", extra={"provider": provider.name})
        metrics.authentication("session", "refreshed")
        return loaded


def principal_of(loaded: LoadedSession) -> Principal:
    record: SessionRecord = loaded.record
    scope = record.tokens.scope or ""
    return Principal(
        kind="session",
        issuer=record.issuer,
        subject=record.subject,
        claims=record.claims,
        scopes=frozenset(scope.split()),
        client_id=None,
        session_id=loaded.session_id,
        access_token=record.tokens.access_token,
        id_token=record.tokens.id_token,
    )
