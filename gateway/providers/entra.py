"""Microsoft Entra ID: tenant-templated issuers, tenant allow-list, group overage via Graph."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from gateway.config.model import ENTRA_MULTI_TENANT, EntraSettings
from gateway.errors import LoginError, ProviderUnavailable
from gateway.idp.http import fetch_json
from gateway.providers.generic import ApiAccess, Profile
from gateway.types import TokenSet

log = logging.getLogger("gateway.login")

TENANT = "{tenantid}"
V1_ISSUER = "https://sts.windows.net/{tenantid}/"  # v1.0 tokens' iss


def _tenant_segment(issuer: str) -> str:
    parts = urlsplit(issuer).path.strip("/").split("/")
    return parts[0].lower() if parts and parts[0] else ""


class Entra(Profile):
    """The multi-tenant discovery documents (/common, /organizations) publish the issuer
    with a literal `{tenantid}`; each token names its tenant in `iss` and `tid`. Only the
    tenants listed in `entra.tenants` get in, whatever the issuer template allows."""

    name = "entra"
    email_fallbacks = ("preferred_username", "upn")

    @property
    def settings(self) -> EntraSettings:
        assert self.config.entra is not None  # the config model requires it
        return self.config.entra

    def discovery_issuer_matches(self, published: object) -> bool:
        if not isinstance(published, str):
            return False
        configured = self.config.issuer
        if published == configured:
            return True
        if TENANT not in published or _tenant_segment(configured) not in ENTRA_MULTI_TENANT:
            return False
        # /organizations/v2.0 publishes .../{tenantid}/v2.0; the v1 /common, sts.windows.net.
        templated = configured.replace("/" + _tenant_segment(configured) + "/", f"/{TENANT}/", 1)
        is_v1_microsoft = urlsplit(configured).hostname == "login.microsoftonline.com"
        return published == templated or (is_v1_microsoft and published == V1_ISSUER)

    def id_token_issuers(self, meta_issuer: str) -> list[str]:
        if TENANT not in meta_issuer:
            return [meta_issuer]
        return [meta_issuer.replace(TENANT, tenant) for tenant in self.settings.tenants]

    def check_identity(self, claims: dict[str, Any]) -> None:
        tid = claims.get("tid")
        if not isinstance(tid, str) or tid.lower() not in self.settings.tenants:
            log.warning("entra: login refused, tenant %r is not in entra.tenants", str(tid)[:64])
            raise LoginError(
                f"tenant {str(tid)[:64]!r} is not in entra.tenants",
                public="Your organisation is not allowed to sign in here.",
            )
        iss = str(claims.get("iss", ""))
        if tid.lower() not in iss.lower():
            raise LoginError("the id_token's iss does not name its tid")

    async def resolve_claims(
        self, api: ApiAccess, tokens: TokenSet, claims: dict[str, Any]
    ) -> dict[str, Any]:
        names = claims.get("_claim_names")
        overage = (isinstance(names, dict) and "groups" in names) or claims.get("hasgroups") in (
            True, "true")  # fmt: skip
        if not overage:
            return claims
        if not self.settings.resolve_group_overage:
            raise LoginError("the user has more groups than the token carries (overage) and "
                             "entra.resolve_group_overage is off")  # fmt: skip
        groups = await self._graph_groups(api, tokens.access_token)
        result = {k: v for k, v in claims.items() if k not in ("_claim_names", "_claim_sources")}
        result["groups"] = groups
        result.pop("hasgroups", None)
        return result

    async def _graph_groups(self, api: ApiAccess, access_token: str) -> list[str]:
        """The user's group ids from Microsoft Graph (getMemberObjects, like the groups claim)."""
        url = self.settings.graph_url.rstrip("/") + "/v1.0/me/getMemberObjects"
        try:
            status, body = await fetch_json(
                api.session, url, guard=api.guard, timeout=api.timeout, method="POST",
                headers={"Authorization": f"Bearer {access_token}"},
                json_body={"securityEnabledOnly": True},
            )  # fmt: skip
        except ProviderUnavailable as exc:
            log.error("entra: group overage not resolved, Graph unreachable: %s", exc)
            raise ProviderUnavailable(f"Microsoft Graph unavailable for the group overage: {exc}",
                                      public="Your groups could not be read; try again later."
                                      ) from None  # fmt: skip
        if status != 200:
            error = body.get("error")
            code = error.get("code") if isinstance(error, dict) else error
            log.error("entra: group overage not resolved, Graph answered HTTP %s %s", status,
                      str(code)[:64])  # fmt: skip
            raise LoginError(
                f"Microsoft Graph refused the group lookup (HTTP {status}); login refused "
                "since the user's groups are unknown",
                public="Your groups could not be read, so sign-in was refused.",
            )
        value = body.get("value")
        if not isinstance(value, list):
            raise ProviderUnavailable("Microsoft Graph answered getMemberObjects without value")
        return [item for item in value if isinstance(item, str)]

    def warnings(self) -> list[str]:
        found = []
        if _tenant_segment(self.config.issuer) == "consumers":
            found.append("profile entra: /consumers is personal Microsoft accounts, no tenant ids")
        if self.config.backchannel_logout:
            found.append("profile entra: Entra ID sends no back-channel logout; set "
                         "backchannel_logout: false (front-channel logout works)")  # fmt: skip
        return found
