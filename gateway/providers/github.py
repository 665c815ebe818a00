"""GitHub: plain OAuth 2.0, identity from its REST API, organisations and teams for policy."""

from __future__ import annotations

import logging
from typing import Any

from gateway.config.model import GitHubSettings
from gateway.errors import LoginError
from gateway.idp.http import fetch_json, fetch_json_list
from gateway.providers.generic import ApiAccess, Profile
from gateway.types import TokenSet

log = logging.getLogger("gateway.login")

API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


class GitHub(Profile):
    """No id_token: who signed in is what `GET /user` says for the access token, over TLS
    from the configured API (the opt-in `github.identity_from_api` says the operator
    accepts that). `sub` is the numeric user id (logins can be renamed and re-registered)."""

    name = "github"
    uses_id_token = False

    @property
    def settings(self) -> GitHubSettings:
        assert self.config.github is not None  # the config model requires it
        return self.config.github

    async def _get(self, api: ApiAccess, token: str, path: str, *, listing: bool) -> Any:
        url = self.settings.api_url.rstrip("/") + path
        headers = {**API_HEADERS, "Authorization": f"Bearer {token}"}
        if listing:
            status, body = await fetch_json_list(
                api.session, url + "?per_page=100", guard=api.guard, timeout=api.timeout,
                headers=headers,
            )  # fmt: skip
        else:
            status, body = await fetch_json(
                api.session, url, guard=api.guard, timeout=api.timeout, headers=headers
            )
        if status != 200:
            message = body.get("message") if isinstance(body, dict) else None
            raise LoginError(f"GitHub API {path} answered HTTP {status}: {str(message)[:100]}")
        return body

    async def identity_from_api(self, api: ApiAccess, tokens: TokenSet) -> dict[str, Any]:
        token = tokens.access_token
        user = await self._get(api, token, "/user", listing=False)
        if not isinstance(user.get("id"), int) or not isinstance(user.get("login"), str):
            raise LoginError("GitHub API /user answered without id and login")
        emails = await self._get(api, token, "/user/emails", listing=True)
        primary = next(
            (e for e in emails if isinstance(e, dict) and e.get("primary") and e.get("verified")),
            None,
        )
        orgs = [o["login"] for o in await self._get(api, token, "/user/orgs", listing=True)
                if isinstance(o, dict) and isinstance(o.get("login"), str)]  # fmt: skip
        teams: list[str] = []
        if self.settings.teams:
            for team in await self._get(api, token, "/user/teams", listing=True):
                org = team.get("organization", {}) if isinstance(team, dict) else {}
                if isinstance(org, dict) and isinstance(team.get("slug"), str):
                    teams.append(f"{org.get('login')}/{team['slug']}")
        claims: dict[str, Any] = {
            "iss": self.config.issuer,
            "sub": str(user["id"]),
            "preferred_username": user["login"],
            "name": user.get("name") or user["login"],
            "orgs": orgs,
            "teams": teams,
            "groups": [*orgs, *teams],
        }
        if primary is not None and isinstance(primary.get("email"), str):
            claims["email"] = primary["email"]
            claims["email_verified"] = True  # only the primary *verified* address is used
        return claims

    def check_identity(self, claims: dict[str, Any]) -> None:
        allowed = {o.lower() for o in self.settings.allowed_orgs}
        if not allowed:
            return
        member_of = {o.lower() for o in claims.get("orgs", [])}
        if not allowed & member_of:
            log.warning("github: login refused, %s is in none of github.allowed_orgs",
                        str(claims.get("preferred_username"))[:64])  # fmt: skip
            raise LoginError(
                "the GitHub user is in none of github.allowed_orgs",
                public="Your GitHub account is not a member of an allowed organisation.",
            )

    def logout_url(
        self, end_session: str | None, id_token: str | None, post_logout: str, state: str
    ) -> str | None:
        return None  # GitHub has no RP-initiated logout: the session ends here only
