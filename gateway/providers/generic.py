"""The standard path (OIDC Core, RFC 6749): the base every profile overrides a few hooks of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from gateway.config.model import Provider
from gateway.errors import LoginError
from gateway.idp.addresses import AddressGuard
from gateway.policy.claim_paths import with_canonical_claims
from gateway.types import TokenSet


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """What a profile needs to call its IdP's APIs (Graph, GitHub): client, guard, timeout."""

    session: aiohttp.ClientSession
    guard: AddressGuard
    timeout: float


def add_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


class Profile:
    """The generic profile. Hooks are called by login/provider.py in this order:
    authorize_params, discovery_issuer_matches, id_token_issuers (or identity_from_api),
    check_identity, resolve_claims, canonical_claims; logout_url at sign-out."""

    name = "generic"
    uses_id_token = True  # False: OAuth 2.0 only, identity_from_api gives the claims
    default_paths: dict[str, str] = {"groups": "groups", "roles": "roles"}
    email_fallbacks: tuple[str, ...] = ()  # claims tried in order when `email` is absent

    def __init__(self, config: Provider) -> None:
        self.config = config

    def authorize_params(self) -> dict[str, str]:
        """Parameters this IdP needs on the authorization request besides the standard ones."""
        return {}

    def discovery_issuer_matches(self, published: object) -> bool:
        """Whether the discovery document's `issuer` is the configured one (exact, OIDC 4.3)."""
        return published == self.config.issuer

    def id_token_issuers(self, meta_issuer: str) -> list[str]:
        """Every `iss` an id_token (or the callback's `iss` parameter) may carry."""
        return [meta_issuer]

    def check_identity(self, claims: dict[str, Any]) -> None:
        """Refuse (LoginError) a validated identity this IdP's rules do not allow."""

    async def resolve_claims(
        self, api: ApiAccess, tokens: TokenSet, claims: dict[str, Any]
    ) -> dict[str, Any]:
        """Claims that need another call to be known (e.g. a group overage)."""
        return claims

    async def identity_from_api(self, api: ApiAccess, tokens: TokenSet) -> dict[str, Any]:
        """The identity of an OAuth 2.0 login without id_token (only if not uses_id_token)."""
        raise LoginError(f"profile {self.name} needs an id_token")

    def claim_paths(self) -> dict[str, str]:
        """Canonical claim -> where it is: the configured path, else the profile's default."""
        configured = self.config.claims
        return {
            "groups": configured.groups or self.default_paths["groups"],
            "roles": configured.roles or self.default_paths["roles"],
        }

    def canonical_claims(self, claims: dict[str, Any]) -> dict[str, Any]:
        """`groups` and `roles` from their paths; `email` from the fallbacks when absent."""
        result = with_canonical_claims(claims, self.claim_paths())
        if not isinstance(result.get("email"), str):
            for name in self.email_fallbacks:
                value = result.get(name)
                if isinstance(value, str) and "@" in value:
                    result["email"] = value
                    break
        return result

    def logout_url(
        self, end_session: str | None, id_token: str | None, post_logout: str, state: str
    ) -> str | None:
        """Where RP-initiated logout sends the browser; None: local logout only."""
        if not end_session:
            return None
        params = {
            "post_logout_redirect_uri": post_logout,
            "state": state,
            "client_id": self.config.client_id,
        }
        if id_token:
            params["id_token_hint"] = id_token
        return add_query(end_session, params)

    def warnings(self) -> list[str]:
        """Likely mistakes in this provider's settings, for `gateway check`."""
        return []
