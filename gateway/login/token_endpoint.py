"""The code exchange and the refresh grant (RFC 6749 4.1.3, 6; RFC 7636 4.5)."""

from __future__ import annotations

import logging
import time
from typing import Any

from gateway.errors import LoginError, ProviderMisconfigured, ProviderUnavailable
from gateway.idp.http import display_url
from gateway.login.client_channel import ClientChannel
from gateway.types import TokenSet

log = logging.getLogger("gateway.login")
_STANDARD = {"access_token", "token_type", "id_token", "refresh_token", "expires_in", "scope"}
# What a token-endpoint error most often means, in words an operator can act on.
_HINTS = {
    "invalid_client": "the provider did not accept the client credentials: check client_id, "
    "client_secret and token_endpoint_auth_method",
    "invalid_grant": "the code or refresh token was refused (expired, reused, or the "
    "redirect_uri / code_verifier does not match)",
    "unauthorized_client": "this client may not use this grant type at the provider",
    "invalid_request": "the provider rejected the request as malformed",
}

# The provider refuses the client itself: an operator must fix the config, a retry cannot.
_CLIENT_REFUSED = frozenset({"invalid_client", "unauthorized_client"})


class RefreshRefused(LoginError):
    """The provider says the refresh token is no good (invalid_grant): the session ends."""

    code = "refresh_refused"


class TokenEndpoint:
    """Calls one provider's token endpoint with its client authentication."""

    def __init__(self, channel: ClientChannel) -> None:
        self._channel = channel

    async def exchange_code(
        self, url: str, code: str, redirect_uri: str, verifier: str | None
    ) -> TokenSet:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier:
            form["code_verifier"] = verifier
        status, body = await self._post(url, form, "token_exchange")
        _trace("code exchange", url, status, body, self._channel.auth.method)
        if status in (400, 401) and body.get("error") in _CLIENT_REFUSED:
            raise ProviderMisconfigured(_describe("code exchange", status, body))
        if status != 200:
            raise LoginError(_describe("code exchange", status, body))
        problem = unusable_token_type(body)
        if problem:
            raise LoginError(f"code exchange: {problem}")
        return parse_token_response(body, time.time())

    async def refresh(self, url: str, refresh_token: str) -> TokenSet:
        status, body = await self._post(
            url, {"grant_type": "refresh_token", "refresh_token": refresh_token}, "refresh"
        )
        _trace("refresh", url, status, body, self._channel.auth.method)
        if status == 400 and body.get("error") == "invalid_grant":
            raise RefreshRefused(_describe("refresh", status, body))
        if status != 200:
            raise ProviderUnavailable(_describe("refresh", status, body))
        problem = unusable_token_type(body)
        if problem:
            raise ProviderUnavailable(f"refresh: {problem}")
        return parse_token_response(body, time.time())

    async def _post(
        self, url: str, form: dict[str, str], endpoint: str
    ) -> tuple[int, dict[str, Any]]:
        return await self._channel.post_json(url, form, audience=url, endpoint=endpoint)


def _trace(step: str, url: str, status: int, body: dict[str, Any], method: str) -> None:
    """One debug line per token-endpoint call: which fields came back, never their values."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            step,
            extra={"url": display_url(url), "status": status, "auth_method": method,
                   "error": body.get("error"), "fields": sorted(body),
                   "expires_in": body.get("expires_in")},
        )  # fmt: skip


def _describe(step: str, status: int, body: dict[str, Any]) -> str:
    error = str(body.get("error", f"HTTP {status}"))[:100]
    detail = str(body.get("error_description", ""))[:200]
    hint = _HINTS.get(error, "")
    return (
        f"{step} failed: {error}"
        + (f" ({detail})" if detail else "")
        + (f": {hint}" if hint else "")
    )


def unusable_token_type(body: dict[str, Any]) -> str | None:
    """Why the access token cannot be used, or None for a Bearer token (RFC 6749 5.1, 7.1:
    the client must understand the type; the gateway sends tokens only as Bearer)."""
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or not token_type:
        return "the token response has no token_type"
    if token_type.lower() != "bearer":
        return (
            f"the token response's token_type is {token_type[:40]!r}; the gateway can use "
            "only Bearer access tokens"
        )
    return None


def parse_token_response(body: dict[str, Any], now: float) -> TokenSet:
    """A TokenSet from a token response, keeping non-standard fields (PiPA's user id)."""
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise LoginError("the token response has no access_token")
    return TokenSet(
        access_token=access,
        token_type=str(body.get("token_type", "Bearer")),
        id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
        refresh_token=body.get("refresh_token")
        if isinstance(body.get("refresh_token"), str)
        else None,
        expires_at=_expires_at(body.get("expires_in"), now),
        scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
        extra={k: v for k, v in body.items() if k not in _STANDARD},
    )


def _expires_at(expires_in: Any, now: float) -> float | None:
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return None
    return now + seconds if seconds > 0 else None
