"""Authenticated POSTs from the gateway's client to one provider (token, PAR, revocation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.idp.addresses import AddressGuard
from gateway.idp.http import fetch_json
from gateway.login.client_auth import ClientAuthenticator


@dataclass(frozen=True, slots=True)
class ClientChannel:
    """The HTTP session, address guard, client authentication and timeout of one provider."""

    session: aiohttp.ClientSession
    guard: AddressGuard
    auth: ClientAuthenticator
    timeout: float

    def authenticate(self, form: dict[str, str], headers: dict[str, str], audience: str) -> None:
        """Add the client's credentials (or assertion, with ``audience``) to a request."""
        self.auth.apply(form, headers, audience=audience)

    async def post_json(
        self, url: str, form: dict[str, str], *, audience: str, endpoint: str = "api"
    ) -> tuple[int, dict[str, Any]]:
        """POST ``form`` with the client's authentication; the status and the JSON answer."""
        headers: dict[str, str] = {}
        self.authenticate(form, headers, audience)
        return await fetch_json(
            self.session,
            url,
            guard=self.guard,
            timeout=self.timeout,
            method="POST",
            data=form,
            headers=headers,
            endpoint=endpoint,
        )
