"""The gateway's cookies: names (with the __Host- prefix when allowed) and attributes."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.config.model import Sessions


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    """Session and login-binding cookies: HttpOnly, SameSite=Lax, Secure unless turned off."""

    session_name: str
    login_name: str
    secure: bool
    domain: str | None

    @classmethod
    def from_config(cls, sessions: Sessions) -> CookiePolicy:
        # __Host- makes the browser refuse the cookie unless Secure, Path=/ and host-only.
        host_only = sessions.cookie_secure and sessions.cookie_domain is None
        prefix = "__Host-" if host_only else ""
        return cls(
            session_name=prefix + sessions.cookie_name,
            login_name=prefix + sessions.cookie_name + "_login",
            secure=sessions.cookie_secure,
            domain=sessions.cookie_domain,
        )

    def _set(self, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            domain=self.domain,
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )

    def set_session(self, response: web.StreamResponse, ticket: str, max_age: float) -> None:
        self._set(response, self.session_name, ticket, int(max_age))

    def clear_session(self, response: web.StreamResponse) -> None:
        self._set(response, self.session_name, "", 0)

    def set_login_binding(self, response: web.StreamResponse, value: str, max_age: float) -> None:
        self._set(response, self.login_name, value, int(max_age))

    def clear_login_binding(self, response: web.StreamResponse) -> None:
        self._set(response, self.login_name, "", 0)
