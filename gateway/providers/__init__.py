"""Provider profiles: everything one identity provider does differently from the standard.

`profile_for(provider)` picks the module named by `providers[].profile` (default
`generic`, the standard path). A profile overrides only the hooks its IdP needs (see
`generic.Profile`): issuer matching, claim locations, group/role resolution, extra
authorize parameters, logout style, or identity from an API instead of an id_token.

Seed-provider quirks that stay generic options, on purpose: TOKI's userinfo URL with
`{field}` placeholders (`endpoints.userinfo`, login/provider.py) and PiPA's extra token
response fields merged into the claims (login/provider.py) are properties of the
operator's endpoint configuration, not of a recognisable IdP, so any provider may need
them; the pause of JWT introspection on `unsupported_token_type` (oidc-provider,
tokens/authenticator.py) reacts to a standard error code, whoever sends it.
"""

from __future__ import annotations

from gateway.config.model import Provider
from gateway.providers.auth0 import Auth0
from gateway.providers.entra import Entra
from gateway.providers.generic import ApiAccess, Profile
from gateway.providers.github import GitHub
from gateway.providers.google import Google
from gateway.providers.keycloak import Keycloak
from gateway.providers.okta import Okta

PROFILES: dict[str, type[Profile]] = {
    "generic": Profile,
    "keycloak": Keycloak,
    "entra": Entra,
    "google": Google,
    "okta": Okta,
    "auth0": Auth0,
    "github": GitHub,
}


def profile_for(config: Provider) -> Profile:
    """The profile object of one configured provider."""
    return PROFILES[config.profile](config)


__all__ = ["PROFILES", "ApiAccess", "Profile", "profile_for"]
