"""The gateway's cookies: names (with the __Host- prefix when allowed) and attributes.

The login-binding cookie is always host-only (``__Host-`` when Secure), whatever
``cookie_domain`` says: it proves which browser started a login, so no sibling host may
set it. The session cookie follows ``cookie_domain``; a sibling host can then plant one,
so a request carrying the session cookie more than once is trusted with neither value.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie

from aiohttp import hdrs, web

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
        secure_prefix = "__Host-" if sessions.cookie_secure else ""
        session_prefix = secure_prefix if sessions.cookie_domain is None else ""
        return cls(
            session_name=session_prefix + sessions.cookie_name,
            login_name=secure_prefix + sessions.cookie_name + "_login",
            secure=sessions.cookie_secure,
            domain=sessions.cookie_domain,
        )

    def _set(
        self,
        response: web.StreamResponse,
        name: str,
        value: str,
        max_age: int,
        *,
        domain: str | None,
        samesite: str = "Lax",
    ) -> None:
        # Written as a header, not response.set_cookie: aiohttp keeps one cookie per name,
        # so the host-only copy expired next to a Domain cookie of the same name was lost.
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        morsel = jar[name]
        morsel["max-age"] = str(max_age)
        morsel["path"] = "/"
        if domain is not None:
            morsel["domain"] = domain
        morsel["secure"] = self.secure
        morsel["httponly"] = True
        morsel["samesite"] = samesite
        response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())

    def set_session(self, response: web.StreamResponse, ticket: str, max_age: float) -> None:
        """Set the session cookie; with a cookie domain, also drop a host-only one (stale)."""
        if self.domain is not None:
            self._set(response, self.session_name, "", 0, domain=None)
        self._set(response, self.session_name, ticket, int(max_age), domain=self.domain)

    def clear_session(self, response: web.StreamResponse) -> None:
        if self.domain is not None:
            self._set(response, self.session_name, "", 0, domain=None)
        self._set(response, self.session_name, "", 0, domain=self.domain)

    def set_login_binding(
        self,
        response: web.StreamResponse,
        value: str,
        max_age: float,
        *,
        cross_site_post: bool = False,
    ) -> None:
        """``cross_site_post``: the provider answers with a form POST (form_post) from its
        own site, which a Lax cookie would not join; only this short-lived, host-only
        cookie is then SameSite=None (browsers drop SameSite=None unless Secure)."""
        samesite = "None" if cross_site_post and self.secure else "Lax"
        self._set(response, self.login_name, value, int(max_age), domain=None, samesite=samesite)

    def clear_login_binding(self, response: web.StreamResponse) -> None:
        self._set(response, self.login_name, "", 0, domain=None)

    def session_ticket(self, request: web.Request) -> str | None:
        """The session cookie's value; None if absent or sent more than once (planted?)."""
        return single_cookie(request, self.session_name)

    def session_ambiguous(self, request: web.Request) -> bool:
        """True when the request carries different session cookies (one may be planted)."""
        return len(set(cookie_values(request, self.session_name))) > 1

    def login_binding(self, request: web.Request) -> str | None:
        """The login-binding cookie's value; None if absent or ambiguous."""
        return single_cookie(request, self.login_name)


def cookie_values(request: web.Request, name: str) -> list[str]:
    """Every non-empty value the request sends for cookie ``name`` (browsers may send several)."""
    values = []
    for header in request.headers.getall("Cookie", []):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            value = value.strip().strip('"')
            if sep and key.strip() == name and value:
                values.append(value)
    return values


def single_cookie(request: web.Request, name: str) -> str | None:
    """The value of cookie ``name`` if the request sends exactly one distinct value."""
    values = set(cookie_values(request, name))
    return values.pop() if len(values) == 1 else None
