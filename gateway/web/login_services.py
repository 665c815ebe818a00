"""What browser login needs at request time: providers, the session manager, cookies."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from gateway import metrics
from gateway.config.model import Config
from gateway.crypto import KeyRing, digest, random_token
from gateway.errors import LoginError, ProviderUnavailable
from gateway.login.provider import ProviderClient
from gateway.login.token_endpoint import RefreshRefused
from gateway.policy.redirects import safe_return_url
from gateway.sessions.manager import LoadedSession, SessionManager
from gateway.sessions.shared import SharedState
from gateway.types import Principal, SessionRecord
from gateway.web.cookies import CookiePolicy
from gateway.web.keys import VIEW

log = logging.getLogger("gateway.login")


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
        self, request: web.Request, provider: ProviderClient, return_to: str
    ) -> web.Response:
        """Store the login state and send the browser to the provider."""
        state, nonce = random_token(), random_token()
        verifier = random_token(48) if provider.config.pkce else None
        binding = request.cookies.get(self.cookies.login_name) or random_token()
        redirect_uri = self.callback_url(request)
        url = await provider.authorization_url(
            redirect_uri=redirect_uri, state=state, nonce=nonce, verifier=verifier
        )
        await self.manager.put_login_state(
            state,
            {
                "provider": provider.name,
                "nonce": nonce,
                "verifier": verifier,
                "return_to": self.safe_target(request, return_to),
                "binding": digest(binding),
                "redirect_uri": redirect_uri,
                "started": time.time(),
            },
            self.config.sessions.login_state_ttl,
        )
        response = web.HTTPFound(url, headers={"Cache-Control": "no-store"})
        self.cookies.set_login_binding(response, binding, self.config.sessions.login_state_ttl)
        log.info("login started", extra={"provider": provider.name})
        metrics.LOGINS_STARTED.labels(provider.name).inc()
        return response

    def binding_matches(self, request: web.Request, stored: str) -> bool:
        cookie = request.cookies.get(self.cookies.login_name)
        return bool(cookie) and digest(cookie or "") == stored

    async def session_principal(self, request: web.Request) -> Principal | None:
        """The principal of the request's session cookie, refreshed if needed; None if none."""
        ticket = request.cookies.get(self.cookies.session_name)
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
