"""The test OpenID Provider: `node tests/op/op.mjs` (oidc-provider v9) on a free port.

Every call here is synchronous (urllib) and talks only to the OP, so it is safe to call
from async tests too (it blocks the loop for a few milliseconds, no callbacks involved).
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import secrets
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import jwt

from tests.support.forms import ANY_PASSWORD, op_form_data, parse_forms
from tests.support.keys import ClientKey
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess, ProcessBacked

OP_DIR = Path(__file__).resolve().parent.parent / "op"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

# registration response members that are not client metadata (dropped when the
# registered clients are handed to a restarted OP as static clients)
_NOT_METADATA = {
    "registration_access_token",
    "registration_client_uri",
    "client_id_issued_at",
    "client_secret_expires_at",
}


class OPError(RuntimeError):
    """The OP answered an error (status and body in the message)."""

    def __init__(self, what: str, status: int, body: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body

    @property
    def error(self) -> str | None:
        try:
            value = json.loads(self.body).get("error")
        except (ValueError, AttributeError):
            return None
        return str(value) if value is not None else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _http(
    method: str,
    url: str,
    *,
    form: dict[str, str] | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, str, str]:
    """One HTTP request -> (status, final URL, body text); HTTP errors are returned."""
    hdrs = dict(headers or {})
    data: bytes | None = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    open_ = opener.open if opener is not None else urllib.request.urlopen
    try:
        with open_(req, timeout=15) as resp:
            return resp.status, resp.geturl(), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.geturl() or url, e.read().decode("utf-8", "replace")


class OidcProvider(ProcessBacked):
    """oidc-provider on 127.0.0.1:`port`, issuer http://127.0.0.1:`port`.

    Storage is in memory: a restart forgets sessions, grants and opaque tokens. Clients
    registered through `register_client` are kept across `restart()` (they are handed to
    the new process as static clients, same id and secret). JWTs signed before a
    restart stay valid unless the restart switches `keys_file`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        keys_file: Path | None = None,
        clients_file: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node not found: the test OP needs Node.js 20+")
        if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(f"oidc-provider is not installed: run `npm ci` in {OP_DIR}")
        self.node = node
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.keys_file = keys_file or workdir / "jwks.json"
        self.static_clients_file = clients_file
        self.extra_env = dict(env or {})  # OP_PROFILE, OP_ISSUER, ... (see op.mjs)
        self.registered: dict[str, dict[str, Any]] = {}
        self._discovery: dict[str, Any] | None = None
        self.process = self._make_process()

    # -- process -----------------------------------------------------------------
    def _make_process(self) -> ManagedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OP_")}
        env.update(OP_PORT=str(self.port), OP_KEYS_FILE=str(self.keys_file))
        env.update(self.extra_env)
        clients_file = self._write_clients_file()
        if clients_file is not None:
            env["OP_CLIENTS_FILE"] = str(clients_file)
        return ManagedProcess(
            f"op:{self.port}",
            [self.node, str(OP_DIR / "op.mjs")],
            log_path=self.workdir / "op.log",
            env=env,
            cwd=OP_DIR,
            ready_url=f"{self.issuer}/.well-known/openid-configuration",
        )

    def _write_clients_file(self) -> Path | None:
        static: list[dict[str, Any]] = []
        if self.static_clients_file is not None:
            static = json.loads(self.static_clients_file.read_text())
        if not self.registered:
            return self.static_clients_file
        known = {c["client_id"] for c in static}
        clients = static + [
            {k: v for k, v in c.items() if k not in _NOT_METADATA}
            for cid, c in self.registered.items()
            if cid not in known
        ]
        path = self.workdir / "clients.json"
        path.write_text(json.dumps(clients, indent=2))
        return path

    def start(self) -> None:
        """Start (again) on the same port; registered clients are handed over."""
        self._discovery = None
        self.process = self._make_process()
        self.process.start()

    def restart(self, keys_file: Path | None = None) -> None:
        """Stop, then start on the same port (same issuer); `keys_file` switches keys.

        A keys file that does not exist yet is created with a new RS256 key: that is
        how a test rotates the signing key.
        """
        self.stop()
        if keys_file is not None:
            self.keys_file = keys_file
        self.start()

    def new_keys_file(self) -> Path:
        """A path for a fresh keys file (the OP creates the key on its next start)."""
        return self.workdir / f"jwks-{secrets.token_hex(4)}.json"

    # -- metadata ----------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            status, _, body = _http("GET", self.url("/.well-known/openid-configuration"))
            if status != 200:
                raise OPError("discovery", status, body)
            self._discovery = json.loads(body)
        return self._discovery

    def endpoint(self, name: str) -> str:
        """A discovery endpoint by short name: token, authorization, end_session, ..."""
        return str(self.discovery[f"{name}_endpoint"])

    def jwks(self) -> dict[str, Any]:
        status, _, body = _http("GET", str(self.discovery["jwks_uri"]))
        if status != 200:
            raise OPError("jwks", status, body)
        result: dict[str, Any] = json.loads(body)
        return result

    # -- clients -----------------------------------------------------------------
    def register_client(self, **metadata: Any) -> dict[str, Any]:
        """Dynamic client registration (RFC 7591); returns the OP's answer.

        The answer has client_id, client_secret (unless auth method none or
        private_key_jwt) and all metadata with the OP's defaults filled in
        (token_endpoint_auth_method client_secret_basic, grant_types
        [authorization_code], response_types [code], application_type web).
        Without `redirect_uris` the client gets no response types and the
        client_credentials grant, i.e. a pure machine client.
        """
        body = dict(metadata)
        if "redirect_uris" not in body:
            body.setdefault("response_types", [])
            body.setdefault("grant_types", ["client_credentials"])
        status, _, text = _http("POST", self.endpoint("registration"), json_body=body)
        if status != 201:
            raise OPError(f"registering client {body}", status, text)
        client: dict[str, Any] = json.loads(text)
        self.registered[client["client_id"]] = client
        return client

    def client_auth(
        self,
        client: dict[str, Any],
        form: dict[str, str],
        *,
        audience: str | None = None,
        private_key: ClientKey | None = None,
    ) -> dict[str, str]:
        """Add the client's authentication to `form`; returns the headers to send."""
        method = client.get("token_endpoint_auth_method", "client_secret_basic")
        cid = str(client["client_id"])
        if method == "client_secret_basic":
            quote = urllib.parse.quote
            raw = f"{quote(cid, safe='')}:{quote(str(client['client_secret']), safe='')}"
            return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}
        if method == "client_secret_post":
            form.update(client_id=cid, client_secret=str(client["client_secret"]))
        elif method == "none":
            form["client_id"] = cid
        elif method in ("private_key_jwt", "client_secret_jwt"):
            now = int(time.time())
            claims = {
                "iss": cid,
                "sub": cid,
                "aud": audience or self.issuer,
                "iat": now,
                "exp": now + 60,
                "jti": secrets.token_urlsafe(16),
            }
            if method == "private_key_jwt":
                if private_key is None:
                    raise ValueError("private_key_jwt needs private_key=ClientKey")
                assertion = jwt.encode(
                    claims, private_key.private_pem, "RS256", headers={"kid": private_key.kid}
                )
            else:
                assertion = jwt.encode(claims, str(client["client_secret"]), "HS256")
            form.update(
                client_id=cid,
                client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                client_assertion=assertion,
            )
        else:
            raise ValueError(f"unsupported token_endpoint_auth_method {method!r}")
        return {}

    def post_as_client(
        self,
        endpoint: str,
        client: dict[str, Any],
        form: dict[str, str],
        *,
        private_key: ClientKey | None = None,
    ) -> tuple[int, str]:
        """POST `form` to a discovery endpoint ("token", "introspection", ...) as client."""
        data = dict(form)
        headers = self.client_auth(client, data, private_key=private_key)
        headers["Accept"] = "application/json"
        status, _, body = _http("POST", self.endpoint(endpoint), form=data, headers=headers)
        return status, body

    def token_request(
        self,
        client: dict[str, Any],
        form: dict[str, str],
        *,
        private_key: ClientKey | None = None,
    ) -> dict[str, Any]:
        status, body = self.post_as_client("token", client, form, private_key=private_key)
        if status != 200:
            raise OPError(f"token request {form.get('grant_type')}", status, body)
        result: dict[str, Any] = json.loads(body)
        return result

    def client_credentials_token(
        self,
        client: dict[str, Any],
        *,
        resource: str | None = "urn:test:api",
        scope: str | None = "api:read",
        private_key: ClientKey | None = None,
    ) -> str:
        """An access token from the client_credentials grant.

        resource urn:test:api -> RFC 9068 JWT (aud urn:test:api, 1 h);
        urn:test:api-opaque -> opaque (aud urn:test:api); urn:test:other -> JWT with
        another audience; urn:test:api-short -> JWT valid 1 s; None -> opaque, no aud.
        """
        form = {"grant_type": "client_credentials"}
        if resource is not None:
            form["resource"] = resource
        if scope is not None:
            form["scope"] = scope
        return str(self.token_request(client, form, private_key=private_key)["access_token"])

    def introspect(
        self, client: dict[str, Any], token: str, *, private_key: ClientKey | None = None
    ) -> dict[str, Any]:
        """RFC 7662 introspection as `client` (any confidential client may introspect any
        token). Note: oidc-provider refuses JWT access tokens here with HTTP 400
        unsupported_token_type (raised as OPError), it does not answer active=false."""
        status, body = self.post_as_client(
            "introspection", client, {"token": token}, private_key=private_key
        )
        if status != 200:
            raise OPError("introspection", status, body)
        result: dict[str, Any] = json.loads(body)
        return result

    def revoke(
        self, client: dict[str, Any], token: str, *, private_key: ClientKey | None = None
    ) -> None:
        status, body = self.post_as_client(
            "revocation", client, {"token": token}, private_key=private_key
        )
        if status != 200:
            raise OPError("revocation", status, body)

    def set_groups(self, user: str, groups: list[str]) -> None:
        """Change a user's groups at the OP (seen by tokens and userinfo issued after)."""
        url = self.url(f"/test/accounts/{urllib.parse.quote(user, safe='')}/groups")
        status, _, body = _http("PUT", url, json_body=groups)
        if status != 204:
            raise OPError("set groups", status, body)

    def refresh_tokens_of(self, user: str) -> list[str]:
        """The refresh tokens the OP issued to a user (any client), oldest first."""
        url = self.url(f"/test/accounts/{urllib.parse.quote(user, safe='')}/refresh-tokens")
        status, _, body = _http("GET", url)
        if status != 200:
            raise OPError("refresh tokens", status, body)
        return [str(token) for token in json.loads(body)]

    def is_token_active(self, client: dict[str, Any], token: str) -> bool:
        """Whether the OP still honours a token (introspection as its client)."""
        return bool(self.introspect(client, token).get("active"))

    # -- device flow (RFC 8628) --------------------------------------------------
    def device_flow_token(
        self,
        client: dict[str, Any],
        user: str = "alice",
        *,
        scope: str = "openid email profile groups",
        resource: str | None = None,
        password: str = ANY_PASSWORD,
        private_key: ClientKey | None = None,
    ) -> dict[str, Any]:
        """Run the device flow: device authorization, the user's part in the OP's HTML
        forms (user code confirm, devInteractions login and consent) with a browser-less
        HTTP client, then the token poll. Returns the token response.

        The client needs the grant type urn:ietf:params:oauth:grant-type:device_code.
        """
        form = {"scope": scope}
        if resource is not None:
            form["resource"] = resource
        status, body = self.post_as_client(
            "device_authorization", client, form, private_key=private_key
        )
        if status != 200:
            raise OPError("device authorization", status, body)
        device = json.loads(body)

        self._device_user_step(str(device["verification_uri_complete"]), user, password)

        interval = float(device.get("interval", 5))
        deadline = time.monotonic() + 30
        poll = {"grant_type": DEVICE_CODE_GRANT, "device_code": str(device["device_code"])}
        while True:
            status, body = self.post_as_client("token", client, poll, private_key=private_key)
            if status == 200:
                result: dict[str, Any] = json.loads(body)
                return result
            error = OPError("device code poll", status, body)
            if error.error not in ("authorization_pending", "slow_down"):
                raise error
            if time.monotonic() > deadline:
                raise error
            time.sleep(interval)

    def _device_user_step(self, start_url: str, user: str, password: str) -> None:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.addheaders = [("Accept", "text/html")]
        status, url, html = _http("GET", start_url, opener=opener)
        for _ in range(12):
            if status != 200:
                raise OPError(f"device user step at {url}", status, html)
            if 'id="op.deviceSuccess"' in html:
                return
            chosen = next(
                ((f, d) for f in parse_forms(html) if (d := op_form_data(f, user, password))),
                None,
            )
            if chosen is None:
                raise OPError(f"device user step: no form to submit at {url}", status, html)
            form, data = chosen
            status, url, html = _http("POST", form.url(url), form=data, opener=opener)
        raise OPError("device user step: too many pages", status, html)
