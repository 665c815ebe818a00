"""Okta: groups only with the `groups` scope and a claim rule; org vs custom servers."""

from __future__ import annotations

from gateway.config.model import TrustedIssuer
from gateway.providers.generic import Profile


def is_org_server(issuer: str) -> bool:
    """The org authorization server (https://<org>.okta.com) versus a custom one
    (.../oauth2/<id>): only a custom server's access tokens are for resource servers."""
    return "/oauth2/" not in issuer.rstrip("/") + "/"


def local_validation_allowed(trusted: TrustedIssuer) -> bool:
    """Whether this issuer's JWT access tokens may be validated locally at all."""
    return not (trusted.profile == "okta" and is_org_server(trusted.issuer))


class Okta(Profile):
    """Login is standard; the differences are the groups scope and bearer routes."""

    name = "okta"

    def warnings(self) -> list[str]:
        if "groups" not in self.config.scopes:
            return [
                "profile okta: without the `groups` scope (and a groups claim rule on the "
                "authorization server) Okta sends no groups, so group policies refuse everyone"
            ]
        return []
