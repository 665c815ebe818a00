"""Google: scheme-less issuer, Workspace domain (`hd`) checked, no end_session, offline."""

from __future__ import annotations

import logging
from typing import Any

from gateway.config.model import GoogleSettings
from gateway.errors import LoginError
from gateway.providers.generic import Profile

log = logging.getLogger("gateway.login")


class Google(Profile):
    """`hd` on the request is only a hint to Google's account chooser: anyone can remove
    it, so the domain is decided by the signed `hd` claim alone."""

    name = "google"

    @property
    def settings(self) -> GoogleSettings:
        return self.config.google or GoogleSettings()

    def authorize_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        domains = self.settings.hosted_domains
        if domains:
            params["hd"] = domains[0] if len(domains) == 1 else "*"
        if self.settings.offline:
            # Google sends a refresh token only for offline access, and again only on consent.
            params.update(access_type="offline", prompt="consent")
        return params

    def id_token_issuers(self, meta_issuer: str) -> list[str]:
        # Google's id_tokens may name their issuer without the scheme (accounts.google.com).
        bare = meta_issuer.split("://", 1)[-1]
        return [meta_issuer, bare] if bare != meta_issuer else [meta_issuer]

    def check_identity(self, claims: dict[str, Any]) -> None:
        domains = self.settings.hosted_domains
        if not domains:
            return
        hd = claims.get("hd")
        if not isinstance(hd, str) or hd.lower() not in {d.lower() for d in domains}:
            log.warning("google: login refused, hd %r is not an allowed domain", str(hd)[:100])
            raise LoginError(
                f"hd claim {str(hd)[:100]!r} is not one of the allowed Workspace domains",
                public="This Google account is not in an allowed organisation.",
            )

    def warnings(self) -> list[str]:
        if not self.settings.hosted_domains:
            return ["profile google: no google.hosted_domains, so any Google account can sign "
                    "in; restrict routes with emails / email_domains rules"]  # fmt: skip
        return []

    def logout_url(
        self, end_session: str | None, id_token: str | None, post_logout: str, state: str
    ) -> str | None:
        return None  # Google has no RP-initiated logout: the session ends here only
