"""What browser login needs at request time: providers, the session manager, cookies."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway import metrics, tracing
from gateway.config.model import Config, StepUp
from gateway.crypto import KeyRing, random_token
from gateway.errors import LoginError, ProviderUnavailable
from gateway.login.provider import ProviderClient
from gateway.login.token_endpoint import RefreshRefused
from gateway.policy.redirects import safe_return_url
from gateway.policy.step_up import authorize_params
from gateway.sessions.manager import LoadedSession, SessionManager
from gateway.sessions.shared import SharedState
from gateway.types import Principal, SessionRecord, TokenSet
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
        step_up: StepUp | None = None,
        claims: dict[str, Any] | None = None,
    ) -> web.Response:
        """Send the browser to the provider, reusing its pending login if it has one.

        Every start (the login endpoint or a navigation to a protected route) spends one
        of the client address's ``rate_limit.per_minute`` login starts: over it, 429 and
        nothing is written. A ``prompt`` ("Use another account") always starts a fresh login.
        ``step_up`` (a route's, else the provider's configured acr_values / max_age) is asked
        for and recorded, so the callback verifies it; ``claims`` are the current session's
        (their acr decides on prompt=login).
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
        step_up = step_up or provider.configured_step_up()
        wanted = step_up.model_dump() if step_up is not None else None
        ttl = self._reusable_for(pending, provider, redirect_uri, now) if prompt is None else 0.0
        if pending is not None and pending.get("step_up") != wanted:
            ttl = 0.0  # a pending login for another level cannot serve this one
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
                "step_up": wanted,
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
            extra=authorize_params(step_up, claims, provider.config.acr_levels)
            if step_up is not None
            else None,
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
        with tracing.span("session load"):
            loaded = await self.manager.load(ticket)
        if loaded is None:
            metrics.authentication("session", "expired")
            return None
        if not self._made_here(loaded.record):
            metrics.authentication("session", "foreign")
            return None
        loaded = await self._maybe_refresh(loaded)
        if loaded is not None:
            loaded = await self._maybe_reread_claims(loaded)
        if loaded is None:
            return None
        now = time.time()
        if self._expired_for_good(loaded, now):
            log.info("session ended: its access token expired and it cannot be refreshed")
            metrics.authentication("session", "ended")
            await self.manager.destroy(loaded.session_id)
            return None
        metrics.authentication("session", "ok")
        return principal_of(loaded, now)

    def _expired_for_good(self, loaded: LoadedSession, now: float) -> bool:
        """An expired access token with no refresh token (or provider) to renew it."""
        tokens = loaded.record.tokens
        renewable = tokens.refresh_token and loaded.record.provider in self.providers
        return bool(
            self.config.sessions.end_with_access_token
            and access_token_expired(tokens, now)
            and not renewable
        )

    def _made_here(self, record: SessionRecord) -> bool:
        """Whether one of this gateway's providers (same client) made it."""
        provider = self.providers.get(record.provider)
        if provider is None:
            return False
        if provider.config.client_id != record.client_id:
            log.info("session of client %r refused: not this gateway's", record.client_id[:64])
            return False
        return True

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
            with tracing.span("session refresh", {"gateway.provider": current.record.provider}):
                return await self._refresh(current, self.providers[current.record.provider])

    def _claims_due(self, loaded: LoadedSession, now: float) -> bool:
        provider = self.providers.get(loaded.record.provider)
        interval = provider.config.claims_refresh_interval if provider else None
        read_at = loaded.record.claims_read_at or loaded.record.created_at
        return interval is not None and now - read_at >= interval

    async def _maybe_reread_claims(self, loaded: LoadedSession) -> LoadedSession | None:
        """Re-read userinfo on claims_refresh_interval (providers whose sessions are not
        refreshed often); one reader per session, like a refresh."""
        if not self._claims_due(loaded, time.time()):
            return loaded
        async with self.manager.refresh_lock(
            loaded.session_id, wait=self.config.sessions.refresh_lock_wait
        ) as holder:
            current = await self.manager.reload(loaded)
            if current is None or not holder or not self._claims_due(current, time.time()):
                return current
            provider = self.providers[current.record.provider]
            tokens = dataclasses.replace(current.record.tokens, id_token=None)
            claims = await self._fresh_claims(current, provider, tokens)
            if claims is None:
                metrics.authentication("session", "ended")
                await self.manager.destroy(current.session_id)
                return None
            current.record.claims = claims
            current.record.claims_read_at = time.time()
            if not await self.manager.save(current):
                return None
            log.info("session claims re-read", extra={"provider": provider.name})
            return current

    async def _fresh_claims(
        self, loaded: LoadedSession, provider: ProviderClient, fresh: TokenSet
    ) -> dict[str, Any] | None:
        """The claims read again with the new tokens; None when the session must end."""
        record = loaded.record
        try:
            return await provider.claims_after_refresh(
                fresh, record.claims, record.subject, record.tokens.id_token
            )
        except LoginError as exc:
            log.warning("session ended: claims after the refresh were refused: %s", exc)
            return None
        except ProviderUnavailable as exc:
            # The tokens are fresh; the claims are re-read at the next refresh.
            log.warning("claims not re-read after the refresh, kept as they were: %s", exc)
            return record.claims

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
            metrics.refresh("refused")
            await self.manager.destroy(loaded.session_id)
            return None
        except ProviderUnavailable as exc:
            expired_for = now - (tokens.expires_at or now)
            if expired_for > self.config.sessions.refresh_grace:
                metrics.refresh("unavailable_failed")
                raise
            log.warning("refresh failed, keeping the session for now: %s", exc)
            metrics.PROVIDER_ERRORS.inc()
            metrics.refresh("unavailable_kept")
            return loaded
        fresh.refresh_token = fresh.refresh_token or tokens.refresh_token
        claims = await self._fresh_claims(loaded, provider, fresh)
        if claims is None:
            metrics.authentication("session", "ended")
            metrics.refresh("id_token_rejected")
            await self.manager.destroy(loaded.session_id)
            return None
        fresh.id_token = fresh.id_token or tokens.id_token
        loaded.record.tokens = fresh
        loaded.record.claims = claims
        loaded.record.claims_read_at = now
        if not await self.manager.save(loaded):
            return None  # the session ended (a logout) while it was being refreshed
        log.info("session refreshed", extra={"provider": provider.name})
        metrics.authentication("session", "refreshed")
        metrics.refresh("refreshed")
        return loaded


def access_token_expired(tokens: TokenSet, now: float) -> bool:
    return tokens.expires_at is not None and tokens.expires_at <= now


def principal_of(loaded: LoadedSession, now: float) -> Principal:
    """The session's caller; an expired access token is left out, so it is never forwarded."""
    record: SessionRecord = loaded.record
    expired = access_token_expired(record.tokens, now)
    scope = record.tokens.scope or ""
    return Principal(
        kind="session",
        issuer=record.issuer,
        subject=record.subject,
        claims=record.claims,
        scopes=frozenset(scope.split()),
        client_id=None,
        session_id=loaded.session_id,
        access_token=None if expired else record.tokens.access_token,
        id_token=record.tokens.id_token,
    )
