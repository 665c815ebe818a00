"""The configuration schema: every key, its type and its default.

The YAML file is validated into these models at start-up; `gateway config schema`
prints their JSON Schema and `docs/configuration.md` is generated from it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from gateway.config.issuer import validate_issuer
from gateway.secret import Secret

DEFAULT_PREFIX = "/_gateway"
DEFAULT_SCOPES = ("openid", "email", "profile")
GITHUB_SCOPES = ("read:user", "user:email", "read:org")
DEFAULT_IDENTITY_HEADERS: dict[str, str] = {
    "X-Auth-Request-User": "sub",
    "X-Auth-Request-Email": "email",
    "X-Auth-Request-Preferred-Username": "preferred_username",
    "X-Auth-Request-Groups": "groups",
}
DEFAULT_STRIP_PREFIXES = ("X-Auth-Request-", "X-Gateway-", "X-Forwarded-User", "X-Remote-User")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a URL (expected http:// or https:// with a host)")
    return value.rstrip("/") if parts.path not in ("", "/") else value


def canonical_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case without a default port (RFC 6454 serialisation)."""
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        raise ValueError("not an origin: bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an origin (expected http:// or https:// with a host)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError("an origin is scheme://host[:port], nothing more")
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = 443 if parts.scheme == "https" else 80
    return (
        f"{parts.scheme}://{host}" if port in (None, default) else f"{parts.scheme}://{host}:{port}"
    )


def _path_prefix(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    segments = value.split("/")
    odd = any(ch in value for ch in "%;\\?#") or not value.isprintable() or "//" in value
    if odd or "." in segments or ".." in segments:
        raise ValueError(
            "must be a plain decoded path: no '//', dot segments, '%', ';', '?', '#' or '\\' "
            "(requests are matched after canonicalisation, see docs/security.md)"
        )
    return value


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("not an IP address or CIDR network") from None
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
PathPrefix = Annotated[str, AfterValidator(_path_prefix)]
Origin = Annotated[str, AfterValidator(canonical_origin)]
Network = Annotated[str, AfterValidator(_network)]
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
               "kib": 2**10, "mib": 2**20, "gib": 2**30}  # fmt: skip
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*")
_SIZE = re.compile(r"\s*(\d+)\s*([kmg]i?b|b)?\s*", re.IGNORECASE)


def parse_duration(value: Any) -> Any:
    """``90s``, ``15m``, ``8h``, ``7d``, ``500ms`` to seconds; numbers pass unchanged."""
    if isinstance(value, str) and not _is_number(value):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(
                "expected seconds or a duration like 90s, 15m, 8h, 7d (units ms, s, m, h, d)"
            )
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    return value


def parse_size(value: Any) -> Any:
    """``10MiB``, ``64KiB``, ``1MB`` to bytes; numbers pass unchanged."""
    if isinstance(value, str) and not _is_number(value):
        match = _SIZE.fullmatch(value)
        if match is None:
            raise ValueError("expected bytes or a size like 64KiB, 10MiB, 1GB")
        return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class Unit(str):
    """Marks a number that also accepts a unit (for the reference's type column)."""


_DURATION_SCHEMA = WithJsonSchema(
    {"anyOf": [{"type": "number", "minimum": 0},
               {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"}]}
)  # fmt: skip
_SIZE_SCHEMA = WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 0},
               {"type": "string", "pattern": r"^\s*\d+\s*([kKmMgG][iI]?[bB]|[bB])?\s*$"}]}
)  # fmt: skip
# Every duration and size field uses one of these, so each accepts the same units.
Duration = Annotated[float, BeforeValidator(parse_duration), _DURATION_SCHEMA, Unit("duration")]
ByteSize = Annotated[int, BeforeValidator(parse_size), _SIZE_SCHEMA, Unit("size")]
Seconds = Annotated[Duration, Field(gt=0)]


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServer(Section):
    cert_file: str = Field(description="PEM certificate chain served to clients.")
    key_file: str = Field(description="PEM private key of the certificate.")


class Listen(Section):
    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    workers: int = Field(1, ge=1, le=256, description="Worker processes sharing the socket.")
    tls: TlsServer | None = Field(None, description="Terminate TLS here (no ingress in front).")
    shutdown_timeout: Seconds = Field(
        30, description="On SIGTERM, seconds to let in-flight requests finish."
    )
    header_timeout: Seconds = Field(
        10,
        description="Seconds a client has to send a complete request head, from opening the "
        "connection or from the first byte of a further request; then it is closed.",
    )
    keepalive_timeout: Seconds = Field(
        60, description="Seconds an idle keep-alive connection stays open between requests."
    )
    max_connections: int = Field(
        4096,
        ge=1,
        description="Open client connections per worker; beyond it a new connection gets "
        "a 503 and is closed. Keep it below the process's open-file limit.",
    )


class Logging(Section):
    format: Literal["json", "text"] = Field("json", description="Log line format.")
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    access_log: bool = Field(True, description="One line per proxied request.")


class Limits(Section):
    max_header_size: ByteSize = Field(
        16384, ge=1024, description="Largest request line / header field accepted, in bytes."
    )
    max_body_size: ByteSize = Field(
        0, ge=0, description="Largest request body forwarded, in bytes; 0 means no limit."
    )
    max_gateway_body_size: ByteSize = Field(
        65536,
        ge=1024,
        description="Largest request body accepted by the gateway's own endpoints (logout, "
        "back-channel logout, admin, forward-auth, ...), in bytes; larger ones get 413. "
        "Proxied bodies stream under max_body_size instead.",
    )


class UpstreamTls(Section):
    ca_file: str | None = Field(None, description="PEM CA bundle to verify the upstream.")
    verify: bool = Field(
        True, description="Verify the upstream certificate. Turn off only on purpose."
    )


class Timeouts(Section):
    connect: Seconds = Field(5, description="Seconds to open a connection to the upstream.")
    read: Seconds = Field(60, description="Seconds to wait for the upstream's response head.")


class ClaimRule(Section):
    """One claim requirement: exactly one of equals, one_of, contains."""

    claim: str = Field(description="Claim name (dots reach into nested objects).")
    equals: str | int | bool | None = Field(None, description="Claim must equal this value.")
    one_of: list[str] | None = Field(None, description="Claim must be one of these values.")
    contains: str | None = Field(None, description="List claim must contain this value.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ClaimRule:
        given = [x for x in (self.equals, self.one_of, self.contains) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, one_of, contains")
        return self


class Policy(Section):
    """Who may pass: every listed requirement must hold (empty means any authenticated)."""

    methods: list[str] | None = Field(None, description="Allowed HTTP methods (default: all).")
    scopes_all: list[str] = Field(default_factory=list, description="Every scope is required.")
    scopes_any: list[str] = Field(default_factory=list, description="At least one is required.")
    claims: list[ClaimRule] = Field(default_factory=list, description="Claim requirements.")
    groups: list[str] = Field(
        default_factory=list, description="Caller must be in at least one of these groups."
    )
    emails: list[str] = Field(default_factory=list, description="Allowed e-mail addresses.")
    email_domains: list[str] = Field(default_factory=list, description="Allowed e-mail domains.")
    client_ids: list[str] = Field(
        default_factory=list, description="Allowed OAuth client ids (bearer callers)."
    )

    @field_validator("methods")
    @classmethod
    def _upper(cls, value: list[str] | None) -> list[str] | None:
        return [m.upper() for m in value] if value is not None else None


class IdentityTokenConfig(Section):
    """A JWT minted per caller and passed to the upstream (see docs/identity-tokens.md)."""

    header: str = Field(
        "X-Gateway-Identity",
        description="Header carrying the token; `Authorization` sends `Bearer <token>`.",
    )
    algorithm: Literal["RS256", "ES256", "EdDSA", "HS256"] = Field(
        "RS256", description="Signing algorithm; HS256 needs `secret`, the others `signing_keys`."
    )
    secret: Secret | None = Field(
        None, description="Shared secret for HS256 (at least 32 bytes, RFC 7518 3.2)."
    )
    audience: str | None = Field(None, description="`aud` claim (default: the upstream URL).")
    issuer: str | None = Field(
        None,
        description="`iss` claim (default: public_url; one of the two must be set, never "
        "the request's Host).",
    )
    ttl: Seconds = Field(300, ge=1, description="Token lifetime in seconds.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra JOSE header fields, e.g. cty."
    )
    claims: dict[str, Any] = Field(
        default_factory=dict,
        description="Claim template; strings like '{sub}' or '{claims.email}' are filled in; "
        "its keys may replace iss, sub, aud.",
    )
    include_standard_claims: bool = Field(
        True, description="Add aud, iat, jti besides iss, sub, exp."
    )

    @model_validator(mode="after")
    def _consistent(self) -> IdentityTokenConfig:
        problems = [
            *_token_header_problems(self.header),
            *_key_problems(self.algorithm, self.secret),
            *(f"headers.{k}: set by the gateway" for k in self.headers if k in _JOSE_RESERVED),
            *(f"claims.{k}: set by the gateway (see ttl)" for k in self.claims if k in _TIMED),
        ]
        if "kid" in self.headers and self.algorithm != "HS256":
            problems.append("headers.kid: the signing key's kid is used")
        if problems:
            raise ValueError("; ".join(problems))
        return self


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_GATEWAY_HEADERS = frozenset(
    {
        "connection", "content-length", "content-type", "cookie", "host", "keep-alive",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
    }
)  # fmt: skip
_JOSE_RESERVED = frozenset({"alg", "crit", "b64", "jku", "jwk", "x5u", "x5c"})
_TIMED = frozenset({"exp", "iat", "nbf", "jti"})
MIN_HS256_SECRET = 32


def _token_header_problems(header: str) -> list[str]:
    if not _TOKEN.fullmatch(header):
        return [f"header: {header!r} is not a valid header name"]
    if header.lower() in _GATEWAY_HEADERS:
        return [f"header: {header!r} is a header the gateway controls"]
    return []


def _key_problems(algorithm: str, secret: Secret | None) -> list[str]:
    if algorithm != "HS256":
        return ["secret: only HS256 uses a secret"] if secret is not None else []
    if secret is None:
        return ["secret: HS256 needs a shared secret"]
    if len(secret.reveal().encode("utf-8")) < MIN_HS256_SECRET:
        return [f"secret: HS256 needs at least {MIN_HS256_SECRET} bytes"]
    return []


class Route(Section):
    name: str | None = Field(None, description="Label used in logs and metrics.")
    host: str | None = Field(
        None, description="Host to match: exact, or '*.example.com'. Absent: any host."
    )
    path: PathPrefix = Field("/", description="Path prefix; the longest matching prefix wins.")
    upstream: HttpUrl | None = Field(
        description="Where matching requests go (http:// or https://); null for a route that "
        "only answers forward-auth checks (nothing is proxied through it).",
    )
    auth: Literal["public", "login", "bearer", "login_or_bearer"] = Field(
        "login", description="How callers authenticate on this route."
    )
    provider: str | None = Field(None, description="Pin the login to this provider's name.")
    preserve_host: bool = Field(False, description="Send the client's Host header upstream.")
    strip_prefix: bool = Field(False, description="Remove the matched path prefix upstream.")
    case_sensitive: bool = Field(
        False,
        description="The upstream matches paths case-sensitively (never serves /Admin as "
        "/admin): a path whose case-folded reading is another protected route's is then "
        "not refused.",
    )
    raw_path: bool = Field(
        False,
        description="Send the path upstream as the client wrote it (';' parameters and "
        "escapes kept) instead of the canonical path. Matching and checks still use the "
        "canonical path. Only for upstreams that need it (e.g. ';jsessionid').",
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)
    tls: UpstreamTls = Field(default_factory=UpstreamTls)
    policy: Policy = Field(default_factory=Policy)
    identity_headers: dict[str, str] | None = Field(
        None, description="Header -> claim mapping for this route (default: the global one)."
    )
    pass_access_token: bool = Field(
        False, description="Send the session's access token as Authorization: Bearer."
    )
    pass_id_token_header: str | None = Field(
        None, description="Send the session's id_token in this header."
    )
    forward_authorization: bool = Field(
        True, description="On bearer routes, forward the caller's Authorization header."
    )
    identity_token: IdentityTokenConfig | None = Field(
        None, description="Mint a signed identity token for the upstream."
    )
    logout_notify_url: HttpUrl | None = Field(
        None, description="POST a logout notice here when a session of this route's app dies."
    )
    websocket_origins: list[Origin] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) allowed to open a WebSocket here with the "
        "session cookie, besides the route's own origin; every other Origin gets 403.",
    )

    @model_validator(mode="after")
    def _raw_path_alone(self) -> Route:
        if self.raw_path and self.strip_prefix:
            raise ValueError("raw_path and strip_prefix cannot be combined: a raw path has no "
                             "canonical prefix to cut")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _public_policy(self) -> Route:
        # Only `methods` can be decided without a caller: any other rule on a public
        # route would look enforced and never be.
        if self.auth == "public" and self.policy.model_copy(update={"methods": None}) != Policy():
            raise ValueError(
                "policy: a public route has no caller identity, so only policy.methods "
                "applies; use auth: login or bearer for the other rules"
            )
        return self

    @model_validator(mode="after")
    def _one_authorization(self) -> Route:
        token = self.identity_token
        bearer_header = token is not None and token.header.lower() == "authorization"
        if bearer_header and self.pass_access_token:
            raise ValueError("identity_token.header Authorization conflicts with pass_access_token")
        return self

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower()
        bare = value[2:] if value.startswith("*.") else value
        if not bare or "*" in bare or "/" in bare:
            raise ValueError("expected a host name like 'app.example.com' or '*.example.com'")
        return value


ProfileName = Literal["generic", "keycloak", "entra", "google", "okta", "auth0", "github"]
ENTRA_TENANT = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
ENTRA_MULTI_TENANT = ("common", "organizations", "consumers")


class ClaimPaths(Section):
    """Where the caller's groups and roles are in the token (dotted path or JSON Pointer)."""

    groups: str | None = Field(
        None,
        description="Path of the groups claim, e.g. `groups`, `realm_access.roles`, "
        "`/resource_access/app/roles` or `https://example.com/groups` (default: the "
        "profile's, else `groups`). Policies and headers then see it as `groups`.",
    )
    roles: str | None = Field(
        None,
        description="Path of the roles claim, e.g. `resource_access.app.roles` (default: the "
        "profile's, else `roles`). Policies and headers then see it as `roles`.",
    )


class EntraSettings(Section):
    """Microsoft Entra ID (see docs/providers/entra.md)."""

    tenants: list[str] = Field(
        description="Tenant ids (GUIDs) whose users may sign in; `tid` must be one of them. "
        "Required: a multi-tenant issuer would otherwise let any tenant in.",
    )
    graph_url: HttpUrl = Field(
        "https://graph.microsoft.com",
        description="Microsoft Graph base URL, read when a token has a group overage.",
    )
    resolve_group_overage: bool = Field(
        True,
        description="On a group overage (`_claim_names` / `hasgroups`), read the groups from "
        "Graph with the access token (needs GroupMember.Read.All or User.Read); off: the "
        "login is refused, since its groups are unknown.",
    )

    @field_validator("tenants")
    @classmethod
    def _tenant_ids(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one tenant id; `any tenant` is never implied")
        bad = [t for t in value if not ENTRA_TENANT.fullmatch(t)]
        if bad:
            raise ValueError(f"not tenant ids (GUIDs): {', '.join(bad)}")
        return [t.lower() for t in value]


class GoogleSettings(Section):
    """Google (see docs/providers/google.md)."""

    hosted_domains: list[str] = Field(
        default_factory=list,
        description="Workspace domains allowed to sign in: `hd` is asked for and then "
        "checked in the id_token's `hd` claim. Empty: any Google account.",
    )
    offline: bool = Field(
        True,
        description="Ask for a refresh token (access_type=offline, prompt=consent).",
    )


class Auth0Settings(Section):
    """Auth0 (see docs/providers/auth0.md)."""

    audience: str | None = Field(
        None,
        description="API identifier sent as `audience`: access tokens are then JWTs for that "
        "API; without it Auth0 issues opaque tokens that cannot be introspected.",
    )
    logout: Literal["oidc", "v2"] = Field(
        "oidc",
        description="`oidc`: /oidc/logout with id_token_hint; `v2`: the legacy "
        "/v2/logout?client_id&returnTo.",
    )


class GitHubSettings(Section):
    """GitHub (plain OAuth 2.0; see docs/providers/github.md)."""

    identity_from_api: Literal[True] = Field(
        description="Must be true: GitHub issues no id_token, so who signed in is read from "
        "its API with the access token. Saying so is the explicit opt-in.",
    )
    api_url: HttpUrl = Field(
        "https://api.github.com",
        description="GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).",
    )
    allowed_orgs: list[str] = Field(
        default_factory=list,
        description="Organisations whose members may sign in (empty: any GitHub user).",
    )
    teams: bool = Field(
        True,
        description="Read team memberships (`org/team` in `teams` and `groups`; scope read:org).",
    )


class Endpoints(Section):
    """Hand-configured provider endpoints (for providers without discovery)."""

    authorization: HttpUrl | None = None
    token: HttpUrl | None = None
    userinfo: str | None = Field(
        None, description="May contain {field} placeholders filled from the token response."
    )
    jwks: HttpUrl | None = None
    end_session: HttpUrl | None = None
    introspection: HttpUrl | None = None
    revocation: HttpUrl | None = None


class Provider(Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Short id used in URLs.")
    label: str | None = Field(None, description="Text on the sign-in button.")
    issuer: str = Field(description="The provider's issuer URL, exactly as it publishes it.")
    discovery: bool = Field(True, description="Read endpoints from the discovery document.")
    endpoints: Endpoints = Field(default_factory=Endpoints)
    client_id: str
    client_secret: Secret | None = None
    token_endpoint_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "none", "private_key_jwt"
    ] = Field("client_secret_basic", description="How the gateway authenticates to the IdP.")
    private_key_file: str | None = Field(None, description="PEM key for private_key_jwt.")
    private_key_id: str | None = Field(None, description="`kid` for private_key_jwt.")
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    extra_auth_params: dict[str, str] = Field(
        default_factory=dict, description="Extra authorization parameters (prompt, acr_values)."
    )
    pkce: bool = Field(True, description="Use PKCE S256. Turn off only if the IdP rejects it.")
    fetch_userinfo: bool = Field(True, description="Call userinfo after the code exchange.")
    id_token_algorithms: list[str] | None = Field(
        None, description="Accepted id_token algorithms (default: what the IdP advertises)."
    )
    allow_insecure_http: bool = Field(
        False, description="Allow a plain-http issuer on a loopback address (development)."
    )
    allow_private_network: bool = Field(
        False, description="Allow endpoints on private or internal addresses (SSRF guard)."
    )
    leeway: Duration = Field(60, ge=0, le=600, description="Clock skew allowed, seconds.")
    post_logout_redirect_uri: str | None = Field(
        None, description="Where the IdP sends the browser after logout (default: gateway '/')."
    )
    backchannel_logout: bool = Field(True, description="Accept back-channel logout tokens.")
    logout_token_max_age: Seconds = Field(
        300, description="Refuse back-channel logout tokens issued longer ago than this, seconds."
    )
    frontchannel_logout: bool = Field(
        True, description="Accept front-channel logout (iss and sid in the URL, in an iframe)."
    )
    timeout: Seconds = Field(10, description="Seconds for each call to the provider.")
    profile: ProfileName = Field(
        "generic",
        description="Provider profile: what this IdP does differently from the standard "
        "(issuer shape, claim locations, logout); see docs/providers/.",
    )
    claims: ClaimPaths = Field(default_factory=ClaimPaths)
    entra: EntraSettings | None = Field(None, description="Settings of the entra profile.")
    google: GoogleSettings | None = Field(None, description="Settings of the google profile.")
    auth0: Auth0Settings | None = Field(None, description="Settings of the auth0 profile.")
    github: GitHubSettings | None = Field(None, description="Settings of the github profile.")

    @model_validator(mode="after")
    def _profile_settings(self) -> Provider:
        for name in ("entra", "google", "auth0", "github"):
            if getattr(self, name) is not None and self.profile != name:
                raise ValueError(f"{name}: settings for profile {name}, but profile is "
                                 f"{self.profile}")  # fmt: skip
        if self.profile == "entra" and self.entra is None:
            raise ValueError("profile entra needs entra.tenants (the tenant ids allowed in)")
        if self.profile == "github" and self.github is None:
            raise ValueError("profile github needs github.identity_from_api: true (opt-in: "
                             "no id_token, identity from the GitHub API)")  # fmt: skip
        return self

    @model_validator(mode="before")
    @classmethod
    def _github_defaults(cls, data: Any) -> Any:
        """GitHub has no discovery: its fixed endpoints and scopes unless given."""
        if not isinstance(data, dict) or data.get("profile") != "github":
            return data
        data = dict(data)
        data.setdefault("issuer", "https://github.com")
        data.setdefault("discovery", False)
        data.setdefault("fetch_userinfo", False)
        data.setdefault("scopes", list(GITHUB_SCOPES))
        endpoints = dict(data.get("endpoints") or {})
        endpoints.setdefault("authorization", "https://github.com/login/oauth/authorize")
        endpoints.setdefault("token", "https://github.com/login/oauth/access_token")
        data["endpoints"] = endpoints
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Provider:
        needs_secret = self.token_endpoint_auth_method in (
            "client_secret_basic",
            "client_secret_post",
        )
        if needs_secret and not self.client_secret:
            raise ValueError(f"{self.token_endpoint_auth_method} needs client_secret")
        if self.token_endpoint_auth_method == "private_key_jwt" and not self.private_key_file:
            raise ValueError("private_key_jwt needs private_key_file")
        if self.token_endpoint_auth_method == "none" and not self.pkce:
            raise ValueError("a public client (auth method none) must use PKCE")
        if self.discovery:
            problems = validate_issuer(self.issuer, allow_insecure_http=self.allow_insecure_http)
            if problems:
                raise ValueError(" ".join(problems))
        if not self.discovery:
            # An OAuth 2.0 provider (github) has no id_token, so no keys to name.
            needed = ("authorization", "token") if self.profile == "github" else (
                "authorization", "token", "jwks")  # fmt: skip
            missing = [n for n in needed if getattr(self.endpoints, n) is None]
            if missing:
                raise ValueError("discovery is off, so endpoints must name " + ", ".join(missing))
        return self


class RedisConfig(Section):
    url: str = Field(
        "redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL (password allowed)."
    )
    password: Secret | None = Field(None, description="Password, if not in the URL.")
    sentinel: list[str] | None = Field(
        None, description="Sentinel addresses host:port; then `master_name` is used."
    )
    master_name: str | None = Field(None, description="Sentinel master name.")
    cluster: bool = Field(False, description="Connect to a Redis Cluster.")
    key_prefix: str = Field("gw:", description="Prefix of every key the gateway writes.")
    ca_file: str | None = Field(None, description="CA bundle for rediss://.")
    timeout: Seconds = Field(2, description="Seconds per Redis command.")

    @model_validator(mode="after")
    def _consistent(self) -> RedisConfig:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("redis", "rediss"):
            raise ValueError("url must start with redis:// or rediss://")
        if self.ca_file is not None and scheme != "rediss":
            raise ValueError("ca_file needs a rediss:// url")
        if self.sentinel and not self.master_name:
            raise ValueError("sentinel needs master_name")
        if self.sentinel and self.cluster:
            raise ValueError("give sentinel or cluster, not both")
        return self


class Sessions(Section):
    store: Literal["memory", "redis"] = Field("memory", description="Where sessions live.")
    redis: RedisConfig = Field(default_factory=RedisConfig)
    secrets: list[Secret] = Field(
        default_factory=list,
        description="Server-side keys (>= 32 chars); the first is used, all are accepted.",
    )
    cookie_name: str = Field("gateway_session", description="Session cookie name.")
    cookie_secure: bool = Field(True, description="Mark cookies Secure. Off only for plain http.")
    cookie_domain: str | None = Field(None, description="Cookie Domain (default: host only).")
    idle_timeout: Seconds = Field(3600, description="Session ends after this long unused.")
    absolute_timeout: Seconds = Field(28800, description="Session ends this long after login.")
    refresh_before: Seconds = Field(
        60, description="Refresh the access token this long before it expires."
    )
    refresh_lock_wait: Seconds = Field(
        5, description="Seconds a request waits for another refresh of its session."
    )
    refresh_grace: Duration = Field(
        300, ge=0, description="Keep a session this long when refresh fails for network reasons."
    )
    cache_ttl: Duration = Field(
        2, ge=0, description="Per-instance cache of sessions, seconds (0: off)."
    )
    login_state_ttl: Seconds = Field(600, description="Seconds a login may take.")
    websocket_check_interval: Seconds = Field(
        5,
        description="Seconds between re-checks of the sessions behind open WebSockets: a socket "
        "is closed (1008) at most this long after its session ends, on every instance.",
    )
    max_login_states: int = Field(
        10_000,
        ge=1,
        description="Memory store: most pending logins kept, in a table of their own (the "
        "oldest goes when full), so a flood of login starts never evicts a session.",
    )
    memory_max_entries: int = Field(
        100_000,
        ge=1,
        description="Memory store: most sessions (and refresh locks) kept; the oldest goes "
        "when full.",
    )

    @field_validator("secrets")
    @classmethod
    def _long_enough(cls, value: list[Secret]) -> list[Secret]:
        for i, secret in enumerate(value):
            if len(secret.reveal()) < 32:
                raise ValueError(f"secret {i} is shorter than 32 characters")
        return value


class Introspection(Section):
    endpoint: HttpUrl | None = Field(None, description="Default: from discovery.")
    client_id: str
    client_secret: Secret | None = None
    auth_method: Literal["client_secret_basic", "client_secret_post", "private_key_jwt"] = (
        "client_secret_basic"
    )
    private_key_file: str | None = None
    mode: Literal["opaque", "all"] = Field(
        "opaque",
        description="Introspect only non-JWT tokens, or every token of this issuer. With "
        "`all`, an `unsupported_token_type` answer for a valid JWT has its JWTs checked "
        "locally for `bearer.cache_ttl` seconds, then introspected again.",
    )
    opaque: bool = Field(
        True,
        description="Send opaque (non-JWT) tokens here. At most one issuer may: an opaque "
        "token does not say where it comes from, and another issuer must never see it.",
    )
    require_audience: bool = Field(
        True,
        description="Refuse an active token whose introspection answer names no `aud`. Turn "
        "off only for a provider that omits it (e.g. device-flow tokens of some providers); "
        "then narrow routes by client_ids or claims.",
    )


class TrustedIssuer(Section):
    issuer: str = Field(description="`iss` of accepted access tokens.")
    discovery: bool = Field(True, description="Find jwks_uri / introspection by discovery.")
    jwks_uri: HttpUrl | None = None
    audiences: list[str] = Field(description="Accepted `aud` values (at least one must match).")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256", "PS256", "EdDSA"],
        description="Accepted signing algorithms (never 'none').",
    )
    introspection: Introspection | None = None
    allow_insecure_http: bool = False
    allow_private_network: bool = False
    leeway: Duration = Field(30, ge=0, le=600)
    profile: ProfileName = Field(
        "generic",
        description="Provider profile of this issuer's tokens (claim locations; okta: an org "
        "authorization server's tokens are always introspected).",
    )
    claims: ClaimPaths = Field(default_factory=ClaimPaths)

    @model_validator(mode="after")
    def _okta_org_server(self) -> TrustedIssuer:
        # Okta's org server signs access tokens for Okta's own APIs: their keys are not
        # for resource servers, so only introspection can vouch for them.
        org_server = self.profile == "okta" and "/oauth2/" not in self.issuer + "/"
        if org_server and (self.introspection is None or self.introspection.mode != "all"):
            raise ValueError(
                "profile okta with an org authorization server (no /oauth2/<id> in the "
                "issuer): its access tokens cannot be validated locally; configure "
                "introspection with mode: all, or use a custom authorization server"
            )
        return self

    @field_validator("algorithms")
    @classmethod
    def _no_none(cls, value: list[str]) -> list[str]:
        if any(a.lower() == "none" for a in value) or not value:
            raise ValueError("'none' is never accepted and the list cannot be empty")
        return value


class Bearer(Section):
    issuers: list[TrustedIssuer] = Field(default_factory=list)
    realm: str = Field("gateway", description="realm in WWW-Authenticate.")
    cache_ttl: Seconds = Field(300, description="Longest a positive introspection is cached.")
    negative_cache_ttl: Seconds = Field(10, description="How long a refused token is cached.")
    cache_max_entries: int = Field(100_000, ge=100, description="Bound of the in-memory caches.")
    shared_cache: bool = Field(
        True,
        description="With Redis sessions, share the cache in Redis (sealed with a key from "
        "`sessions.secrets`, so only with secrets set).",
    )

    @model_validator(mode="after")
    def _one_opaque_introspector(self) -> Bearer:
        opaque = [i.issuer for i in self.issuers if i.introspection and i.introspection.opaque]
        if len(opaque) > 1:
            raise ValueError(
                "issuers: opaque tokens would be sent to " + ", ".join(opaque) + "; set "
                "introspection.opaque: false on all but the issuer that issues them"
            )
        return self


class IdentityHeaders(Section):
    headers: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_IDENTITY_HEADERS),
        description="Header -> claim mapping sent to upstreams.",
    )
    strip_prefixes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STRIP_PREFIXES),
        description="Client headers starting with these are always removed.",
    )


class SigningKey(Section):
    file: str = Field(description="PEM private key (RSA, EC P-256 or Ed25519).")
    kid: str | None = Field(None, description="Key id (default: the RFC 7638 JWK thumbprint).")


MIN_ADMIN_TOKEN = 32


class Admin(Section):
    token: Secret | None = Field(
        None,
        description=f"Bearer credential for /_gateway/admin/* (at least {MIN_ADMIN_TOKEN} "
        "characters); without it the admin endpoints do not exist.",
    )
    public: bool = Field(
        False,
        description="Also serve the admin endpoints on the main listener. Off: they are "
        "served only on the internal listener (metrics.listen).",
    )
    max_failures: int = Field(
        10,
        ge=1,
        description="Wrong admin tokens allowed per client address per minute; then 429.",
    )

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: Secret | None) -> Secret | None:
        if value is not None and len(value.reveal()) < MIN_ADMIN_TOKEN:
            raise ValueError(f"shorter than {MIN_ADMIN_TOKEN} characters")
        return value


class RateLimit(Section):
    enabled: bool = True
    per_minute: int = Field(
        300,
        ge=1,
        description="Requests per client address per minute to login, callback and logout "
        "endpoints. Behind a proxy, list it in trusted_proxies or all clients share one address.",
    )


DEFAULT_INTERNAL_LISTEN = "127.0.0.1:9464"


class Metrics(Section):
    enabled: bool = True
    listen: str | None = Field(
        DEFAULT_INTERNAL_LISTEN,
        description="host:port of the internal listener serving /metrics (and the admin "
        "endpoints). Loopback by default: in a container set 0.0.0.0:9464 and keep the "
        "port off the public ingress. null: no internal listener.",
    )
    public: bool = Field(
        False,
        description="Also serve {prefix}/metrics on the main listener (readable by anyone "
        "who reaches the gateway).",
    )


def _hex_colour(value: str) -> str:
    # Colours are written into the pages' style sheet: only a plain hex colour may get there.
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValueError("expected a colour as #rrggbb")
    return value.lower()


HexColour = Annotated[str, AfterValidator(_hex_colour)]


class Colours(Section):
    primary: HexColour = Field("#1d4ed8", description="Buttons and links.")
    on_primary: HexColour = Field("#ffffff", description="Text on a primary-coloured button.")
    background: HexColour = Field("#ffffff", description="Page background.")
    text: HexColour = Field("#1f2937", description="Body text.")
    muted: HexColour = Field("#4b5563", description="Secondary text (request id, footer).")


class DarkColours(Colours):
    """The colours when the browser prefers a dark scheme."""

    primary: HexColour = Field("#93c5fd", description="Buttons and links.")
    on_primary: HexColour = Field("#0b1220", description="Text on a primary-coloured button.")
    background: HexColour = Field("#111827", description="Page background.")
    text: HexColour = Field("#f3f4f6", description="Body text.")
    muted: HexColour = Field("#cbd5e1", description="Secondary text (request id, footer).")


class Ui(Section):
    """What people see on the gateway's own pages (sign-in, errors, sign-out)."""

    product_name: str = Field(
        "Sign-in", max_length=80, description="Name shown in the page header and titles."
    )
    logo: str | None = Field(
        None,
        description="Logo: a file path or an http(s) URL; either way the gateway serves it "
        "itself at {prefix}/ui/logo (PNG, JPEG, GIF, WebP or SVG, at most 512 KiB).",
    )
    logo_alt: str | None = Field(
        None, max_length=200, description="Text alternative of the logo (default: product_name)."
    )
    colours: Colours = Field(default_factory=Colours, description="Light colour scheme.")
    dark_colours: DarkColours = Field(
        default_factory=DarkColours,
        description="Colour scheme when the browser prefers dark (prefers-color-scheme).",
    )
    support_contact: str | None = Field(
        None,
        max_length=200,
        description="Who to contact when sign-in fails for a reason the user cannot fix: "
        "an e-mail address (shown as a mailto link) or any text.",
    )
    support_url: HttpUrl | None = Field(None, description="A help or service-desk page.")
    footer: str | None = Field(None, max_length=500, description="Plain text at the page bottom.")
    templates_dir: str | None = Field(
        None,
        description="Directory of Jinja2 templates replacing the default pages by file name "
        "(see docs/pages.md); its locale/ subdirectory may add message catalogs.",
    )
    language: str | None = Field(
        None,
        pattern=r"^[a-z]{2,3}$",
        description="Always use this language instead of following Accept-Language.",
    )
    default_language: str = Field(
        "en",
        pattern=r"^[a-z]{2,3}$",
        description="Language when Accept-Language names none the gateway has.",
    )
    logout_confirmation: Literal["gateway", "provider"] = Field(
        "gateway",
        description="Who asks before signing out: 'gateway' always shows the gateway's page; "
        "'provider' skips it when the user clicked a sign-out link on this site and the "
        "provider has a logout endpoint (which asks its own question), so nobody is asked twice.",
    )
    provider_logos: dict[str, str] = Field(
        default_factory=dict,
        description="Provider name -> logo (file or URL) shown on its sign-in button.",
    )


class Config(Section):
    """Top level of the configuration file."""

    public_url: HttpUrl | None = Field(
        None, description="External base URL of the gateway (default: from the request)."
    )
    prefix: PathPrefix = Field(DEFAULT_PREFIX, description="Reserved path for gateway endpoints.")
    listen: Listen = Field(default_factory=Listen)
    logging: Logging = Field(default_factory=Logging)
    limits: Limits = Field(default_factory=Limits)
    trusted_proxies: list[Network] = Field(
        default_factory=list, description="Peers whose X-Forwarded-* headers are believed."
    )
    allowed_redirect_hosts: list[str] = Field(
        default_factory=list, description="Other hosts a login may return to."
    )
    routes: list[Route] = Field(min_length=1)
    providers: list[Provider] = Field(default_factory=list)
    sessions: Sessions = Field(default_factory=Sessions)
    bearer: Bearer = Field(default_factory=Bearer)
    identity: IdentityHeaders = Field(default_factory=IdentityHeaders)
    signing_keys: list[SigningKey] = Field(
        default_factory=list,
        description="Keys for identity tokens, all published at {prefix}/jwks; per algorithm "
        "the last key of its type signs.",
    )
    admin: Admin = Field(default_factory=Admin)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    metrics: Metrics = Field(default_factory=Metrics)
    ui: Ui = Field(default_factory=Ui, description="Branding and language of the gateway's pages.")

    # Rules across sections (unique names, a provider for each login route, ...) are in
    # gateway/web/rules.py, so `check` can report them all at once and `run` obeys them.
