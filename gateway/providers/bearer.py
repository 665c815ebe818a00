"""What a profile changes for bearer tokens: claim locations, and whether JWTs may be
checked locally (Okta's org server: never)."""

from __future__ import annotations

from typing import Any

from gateway.config.model import TrustedIssuer
from gateway.policy.claim_paths import with_canonical_claims
from gateway.providers.generic import Profile
from gateway.providers.keycloak import Keycloak
from gateway.providers.okta import local_validation_allowed

_DEFAULT_PATHS: dict[str, dict[str, str]] = {"keycloak": Keycloak.default_paths}


def bearer_claims(trusted: TrustedIssuer, claims: dict[str, Any]) -> dict[str, Any]:
    """The token's claims with `groups` / `roles` read from the issuer's configured paths."""
    defaults = _DEFAULT_PATHS.get(trusted.profile, Profile.default_paths)
    paths = {
        "groups": trusted.claims.groups or defaults["groups"],
        "roles": trusted.claims.roles or defaults["roles"],
    }
    return with_canonical_claims(claims, paths)


__all__ = ["bearer_claims", "local_validation_allowed"]
