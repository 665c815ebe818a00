"""Keycloak: realm issuers under /realms/<realm>, roles in nested claims."""

from __future__ import annotations

from gateway.providers.generic import Profile


class Keycloak(Profile):
    """Realm roles by default (`realm_access.roles`); client roles by configuring
    `claims.roles: resource_access.<client>.roles`. Logout is the standard RP-initiated
    logout with id_token_hint and client_id (Keycloak needs one of them), back-channel
    logout by `sid`: both on the standard path."""

    name = "keycloak"
    default_paths = {"groups": "groups", "roles": "realm_access.roles"}

    def warnings(self) -> list[str]:
        if "/realms/" not in self.config.issuer:
            return ["profile keycloak: a Keycloak issuer ends in /realms/<realm>"]
        return []
