"""Auth0: issuer with a trailing slash, `audience`, namespaced claims, its logout URLs."""

from __future__ import annotations

from gateway.config.model import Auth0Settings
from gateway.providers.generic import Profile, add_query


class Auth0(Profile):
    """Namespaced claims (`https://example.com/roles`) are read through `claims.roles`."""

    name = "auth0"

    @property
    def settings(self) -> Auth0Settings:
        return self.config.auth0 or Auth0Settings()

    def authorize_params(self) -> dict[str, str]:
        # Without an audience Auth0 issues opaque access tokens nobody can introspect.
        audience = self.settings.audience
        return {"audience": audience} if audience else {}

    def discovery_issuer_matches(self, published: object) -> bool:
        # Auth0 publishes its issuer with a trailing '/': the same URL, so accept the
        # configured one without it too (the published one is then used everywhere).
        return published in (self.config.issuer, self.config.issuer.rstrip("/") + "/")

    def logout_url(
        self, end_session: str | None, id_token: str | None, post_logout: str, state: str
    ) -> str | None:
        base = self.config.issuer.rstrip("/")
        if self.settings.logout == "v2":
            return add_query(
                base + "/v2/logout", {"client_id": self.config.client_id, "returnTo": post_logout}
            )
        return super().logout_url(end_session or base + "/oidc/logout", id_token, post_logout,
                                  state)  # fmt: skip

    def warnings(self) -> list[str]:
        if not self.config.issuer.endswith("/"):
            return ["profile auth0: Auth0 issuers end with '/' (https://TENANT.auth0.com/)"]
        return []
