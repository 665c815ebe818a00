"""Local stand-ins for Microsoft Graph and the GitHub REST API (they cannot run here).

Each serves only the few endpoints the gateway calls, answering with the response shapes
recorded from the providers' documentation:
- Graph `POST /v1.0/me/getMemberObjects` -> {"@odata.context": ..., "value": [ids]}
  (learn.microsoft.com/graph/api/directoryobject-getmemberobjects); a denial is
  HTTP 403 {"error": {"code": "Authorization_RequestDenied", "message": ...}}.
- GitHub `GET /user`, `/user/emails`, `/user/orgs`, `/user/teams`
  (docs.github.com/rest/users, /rest/orgs, /rest/teams).
The bearer token is checked by introspecting it at the test OP (as the real APIs accept
only their provider's live tokens), and the answer is chosen by the token's subject.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from aiohttp import web

from tests.support.op import OidcProvider
from tests.support.ports import free_port


class FakeApi:
    """An aiohttp app on 127.0.0.1 in the test's event loop; records each call it got."""

    def __init__(self, op: OidcProvider, client: dict[str, Any]) -> None:
        self.op = op
        self.client = client
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.calls: list[tuple[str, str]] = []  # (path, subject or "invalid")
        self.app = web.Application()
        self._runner: web.AppRunner | None = None

    async def subject(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").removeprefix("token ")
        if not token:
            return None
        answer = await asyncio.to_thread(self.op.introspect, self.client, token)
        subject = answer.get("sub") if answer.get("active") else None
        self.calls.append((request.path, str(subject or "invalid")))
        return str(subject) if subject else None

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


GRAPH_DENIED = {
    "error": {
        "code": "Authorization_RequestDenied",
        "message": "Insufficient privileges to complete the operation.",
        "innerError": {"date": "2024-01-01T00:00:00", "request-id": "0", "client-request-id": "0"},
    }
}


class FakeGraph(FakeApi):
    """Microsoft Graph: group ids per subject; `deny` answers 403 like a missing consent."""

    def __init__(
        self, op: OidcProvider, client: dict[str, Any], groups: dict[str, list[str]]
    ) -> None:
        super().__init__(op, client)
        self.groups = groups
        self.deny = False
        self.app.router.add_post("/v1.0/me/getMemberObjects", self.member_objects)

    async def member_objects(self, request: web.Request) -> web.Response:
        subject = await self.subject(request)
        if subject is None:
            return web.json_response(
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "Access token is empty.",
                    }
                },
                status=401,
            )
        if self.deny:
            return web.json_response(GRAPH_DENIED, status=403)
        body = await request.json()
        assert body == {"securityEnabledOnly": True}
        return web.json_response({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
            "value": self.groups.get(subject, []),
        })  # fmt: skip


class FakeGitHub(FakeApi):
    """GitHub REST API: users by login (the OP subject), with orgs and teams."""

    def __init__(self, op: OidcProvider, client: dict[str, Any], orgs: dict[str, list[str]],
                 teams: dict[str, list[tuple[str, str]]]) -> None:  # fmt: skip
        super().__init__(op, client)
        self.orgs = orgs
        self.teams = teams
        self.ids = {login: 1000 + i for i, login in enumerate(sorted({*orgs, *teams}))}
        for path, handler in (
            ("/user", self.user),
            ("/user/emails", self.emails),
            ("/user/orgs", self.user_orgs),
            ("/user/teams", self.user_teams),
        ):
            self.app.router.add_get(path, handler)  # fmt: skip

    async def _login(self, request: web.Request) -> str | None:
        return await self.subject(request)

    @staticmethod
    def _unauthorized() -> web.Response:
        return web.json_response(
            {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            status=401,
        )

    async def user(self, request: web.Request) -> web.Response:
        login = await self._login(request)
        if login is None:
            return self._unauthorized()
        return web.json_response({
            "login": login, "id": self.ids.get(login, 999), "node_id": "MDQ6VXNlcjE=",
            "avatar_url": "https://github.com/images/error/octocat_happy.gif",
            "type": "User", "site_admin": False, "name": f"{login.title()} Octocat",
            "company": None, "email": None,  # the public e-mail: often null
        })  # fmt: skip

    async def emails(self, request: web.Request) -> web.Response:
        login = await self._login(request)
        if login is None:
            return self._unauthorized()
        return web.json_response([
            {"email": f"{login}@old.example", "verified": False, "primary": False,
             "visibility": None},
            {"email": f"{login}@users.example", "verified": True, "primary": True,
             "visibility": "private"},
        ])  # fmt: skip

    async def user_orgs(self, request: web.Request) -> web.Response:
        login = await self._login(request)
        if login is None:
            return self._unauthorized()
        return web.json_response([
            {"login": org, "id": 5000 + i, "node_id": "MDEyOk9yZ2FuaXphdGlvbjE=",
             "url": f"https://api.github.com/orgs/{org}", "description": ""}
            for i, org in enumerate(self.orgs.get(login, []))
        ])  # fmt: skip

    async def user_teams(self, request: web.Request) -> web.Response:
        login = await self._login(request)
        if login is None:
            return self._unauthorized()
        return web.json_response([
            {"id": 7000 + i, "slug": slug, "name": slug.title(), "privacy": "closed",
             "permission": "pull", "organization": {"login": org, "id": 5000}}
            for i, (org, slug) in enumerate(self.teams.get(login, []))
        ])  # fmt: skip
