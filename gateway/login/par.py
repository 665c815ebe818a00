"""Pushed Authorization Requests (RFC 9126): the authorization request goes to the
provider over the back channel, and the browser carries only `request_uri` and `client_id`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from gateway.errors import ProviderMisconfigured, ProviderUnavailable
from gateway.idp.discovery import ProviderMetadata
from gateway.login.client_channel import ClientChannel

log = logging.getLogger("gateway.login")

PAR_ENDPOINT = "pushed_authorization_request_endpoint"
PAR_REQUIRED = "require_pushed_authorization_requests"


def par_endpoint(meta: ProviderMetadata, wanted: bool, provider: str) -> str | None:
    """The PAR endpoint to use for this provider, or None to send the request in the URL.

    PAR is used when the configuration asks for it or the provider requires it; either
    way without an advertised endpoint the login cannot go on (never a silent downgrade).
    """
    required = meta.raw.get(PAR_REQUIRED) is True
    if not (wanted or required):
        return None
    endpoint = meta.raw.get(PAR_ENDPOINT)
    if isinstance(endpoint, str) and endpoint:
        return endpoint
    why = "requires pushed authorization requests" if required else "is configured for PAR"
    raise ProviderMisconfigured(
        f"provider {provider} {why} but its discovery document has no {PAR_ENDPOINT}"
    )


class PushedAuthorization:
    """Pushes authorization requests to one provider with its client authentication."""

    def __init__(self, channel: ClientChannel) -> None:
        self._channel = channel

    async def push(self, endpoint: str, issuer: str, params: Mapping[str, str]) -> str:
        """POST the request's parameters; return the `request_uri` the provider issued."""
        # RFC 9126 2: the issuer identifier is the audience of a client assertion here.
        status, body = await self._channel.post_json(endpoint, dict(params), audience=issuer)
        if status not in (200, 201):
            raise _refused(status, body)
        request_uri = body.get("request_uri")
        if not isinstance(request_uri, str) or not request_uri:
            raise ProviderUnavailable("the PAR endpoint answered without a request_uri")
        return request_uri


def front_channel_url(authorization_endpoint: str, client_id: str, request_uri: str) -> str:
    """The URL the browser is sent to: only the client and the pushed request's handle."""
    separator = "&" if "?" in authorization_endpoint else "?"
    query = urlencode({"client_id": client_id, "request_uri": request_uri})
    return authorization_endpoint + separator + query


def _refused(status: int, body: dict[str, Any]) -> Exception:
    error = str(body.get("error", f"HTTP {status}"))[:100]
    detail = str(body.get("error_description", ""))[:200]
    message = f"pushed authorization request refused: {error}" + (f" ({detail})" if detail else "")
    if status >= 500:
        return ProviderUnavailable(message)
    # A 4xx says the gateway's own request or client is wrong: an operator must act.
    return ProviderMisconfigured(message)
