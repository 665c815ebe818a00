"""Token revocation at the provider (RFC 7009) when a session ends: best effort, logged.

The refresh token goes first (revoking it usually revokes the grant's access tokens
too), then the access token. RFC 7009 2.2: 200 means revoked (or already invalid), so
the body is not read; any other answer or a network failure is logged, never raised,
and never holds up a logout.
"""

from __future__ import annotations

import logging

import aiohttp

from gateway.audit import audit
from gateway.errors import ProviderUnavailable
from gateway.idp.http import display_url
from gateway.login.client_channel import ClientChannel
from gateway.types import TokenSet

log = logging.getLogger("gateway.logout")


class TokenRevoker:
    """Revokes one provider's tokens with the client's own authentication."""

    def __init__(self, channel: ClientChannel) -> None:
        self._channel = channel

    async def revoke_all(self, url: str, tokens: TokenSet) -> int:
        """Revoke the refresh and the access token; return how many the provider took."""
        done = 0
        if tokens.refresh_token:
            done += await self.revoke(url, tokens.refresh_token, "refresh_token")
        if tokens.access_token:
            done += await self.revoke(url, tokens.access_token, "access_token")
        return done

    async def revoke(self, url: str, token: str, hint: str) -> bool:
        """One revocation request; True on 200."""
        form = {"token": token, "token_type_hint": hint}
        headers = {"Accept": "application/json"}
        self._channel.authenticate(form, headers, url)
        where = display_url(url)
        try:
            await self._channel.guard.check(url)
            async with self._channel.session.post(
                url,
                data=form,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._channel.timeout),
            ) as response:
                status = response.status
                detail = (await response.content.read(300)).decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, ProviderUnavailable) as exc:
            log.warning("revoking the %s at %s failed: %s", hint, where, type(exc).__name__)
            audit("token_revocation_failed", hint=hint, at=where, reason=type(exc).__name__)
            return False
        if status != 200:
            printable = "".join(ch if ch.isprintable() else "?" for ch in detail[:200])
            log.warning("revoking the %s at %s: HTTP %d %s", hint, where, status, printable)
            audit("token_revocation_failed", hint=hint, at=where, reason=f"HTTP {status}")
            return False
        log.info("revoked the session's %s at %s", hint, where)
        audit("token_revoked", hint=hint, at=where)
        return True
