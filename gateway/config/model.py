"""The configuration schema: every key, its type and its default.

The YAML file is validated into these models at start-up; `gateway config schema`
prints their JSON Schema and `docs/configuration.md` is generated from it.
"""

from __future__ import annotations

import importlib.util
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
from gateway.config.safe_regex import check_pattern
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
    client_ca_file: str | None = Field(
        None,
        description="PEM CA bundle: ask clients for a certificate (optional, so browsers "
        "connect as before) and verify it against these CAs. Tokens bound to a certificate "
        "(RFC 8705 cnf.x5t#S256) must come over a connection with that certificate.",
    )


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
    max_connections_per_client: int = Field(
        512,
        ge=0,
        description="Open connections per client address (the TCP peer) per worker; beyond "
        "it a new connection from that address gets a 503 and is closed. Behind a proxy "
        "every client shares the proxy's address: raise it to the proxy's connection pool "
        "size, or 0 to turn the cap off.",
    )
    body_timeout: Seconds = Field(
        10,
        description="Seconds a client has to send the whole body of a request to the "
        "gateway's own endpoints (under the prefix), once the head is complete; then 408 "
        "and the connection is closed. Proxied bodies fall under limits.body_idle_timeout.",
    )


class AuditLog(Section):
    enabled: bool = Field(
        True,
        description="One line per security event (logins, logouts, admin actions, step-up) "
        "on the logger gateway.audit; see docs/observability.md for the events.",
    )
    file: str | None = Field(
        None,
        description="Write audit lines only to this file, as JSON lines whatever "
        "logging.format says (appended; reopen by restarting). Unset: they go to stderr "
        "with the other logs.",
    )


class Logging(Section):
    format: Literal["json", "text"] = Field("json", description="Log line format.")
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    access_log: bool = Field(True, description="One line per proxied request.")
    audit: AuditLog = Field(default_factory=AuditLog, description="The security audit log.")


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
    body_idle_timeout: Seconds = Field(
        60,
        description="Seconds a proxied request body may stall (no byte from the client) "
        "before the request is given up and the connection closed; a steady upload may "
        "last as long as the upstream allows.",
    )


class UpstreamTls(Section):
    ca_file: str | None = Field(None, description="PEM CA bundle to verify the upstream.")
    verify: bool = Field(
        True, description="Verify the upstream certificate. Turn off only on purpose."
    )


class Timeouts(Section):
    connect: Seconds = Field(5, description="Seconds to open a connection to the upstream.")
    read: Seconds = Field(60, description="Seconds to wait for the upstream's response head.")


def _safe_pattern(value: str) -> str:
    check_pattern(value)
    return value


SafePattern = Annotated[str, AfterValidator(_safe_pattern)]
COMPARISONS = ("equals", "one_of", "contains", "prefix", "matches", "at_least", "present")


class Comparison(Section):
    """How a value is compared: exactly one of equals, one_of, contains, prefix, matches,
    at_least, present (see docs/policy.md)."""

    equals: str | int | bool | None = Field(None, description="Value must equal this (typed).")
    one_of: list[str] | None = Field(None, description="Value (or a list item) is one of these.")
    contains: str | None = Field(
        None, description="List value (or space/comma separated string) contains this item."
    )
    prefix: str | None = Field(None, description="Value (or a list item) starts with this.")
    matches: SafePattern | None = Field(
        None,
        description="Value (or a list item) matches this regular expression as a whole; a "
        "safe subset that cannot backtrack catastrophically (docs/policy.md).",
    )
    at_least: int | float | str | None = Field(
        None,
        description="Value is a number >= this; or, with `order`, a level at or above this one.",
    )
    order: list[str] | None = Field(
        None,
        description="Levels from lowest to highest (e.g. acr values) for at_least on strings.",
    )
    present: bool | None = Field(None, description="true: the value exists; false: it does not.")

    def comparison_problems(self) -> list[str]:
        given = [name for name in COMPARISONS if getattr(self, name) is not None]
        if len(given) != 1:
            return ["give exactly one of " + ", ".join(COMPARISONS)]
        problems: list[str] = []
        if self.order is not None and self.at_least is None:
            problems.append("order applies to at_least only")
        if isinstance(self.at_least, str):
            if not self.order:
                problems.append("at_least on a level name needs `order` (lowest first)")
            elif self.at_least not in self.order:
                problems.append(f"at_least: {self.at_least!r} is not in order")
        if isinstance(self.at_least, bool):
            problems.append("at_least takes a number or a level name")
        return problems


class _ClaimName(Section):
    claim: str = Field(description="Claim name (dots reach into nested objects).")


class ClaimRule(Comparison, _ClaimName):  # bases in this order: `claim` is listed first
    """One claim requirement: the claim and exactly one comparison."""

    @model_validator(mode="after")
    def _exactly_one(self) -> ClaimRule:
        problems = self.comparison_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PathTest(Section):
    """A test on the request path below the route's prefix (canonical, decoded)."""

    equals: str | None = Field(None, description="Path equals this.")
    one_of: list[str] | None = Field(None, description="Path is one of these.")
    prefix: str | None = Field(None, description="Path starts with this.")
    matches: SafePattern | None = Field(
        None, description="Path matches this regular expression as a whole (safe subset)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> PathTest:
        given = [x for x in (self.equals, self.one_of, self.prefix, self.matches) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, one_of, prefix, matches")
        return self


CONDITION_KINDS = ("all", "any", "not", "claim", "groups", "method", "path", "client_ip")


class Condition(Comparison):
    """One test or a combination: exactly one of all, any, not, claim (with a comparison),
    groups, method, path, client_ip; `reason` names it in logs and explanations."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    all: list[Condition] | None = Field(None, description="Every condition holds.")
    any: list[Condition] | None = Field(None, description="At least one condition holds.")
    not_: Condition | None = Field(None, alias="not", description="The condition does not hold.")
    claim: str | None = Field(None, description="A claim path, tested with one comparison.")
    groups: list[str] | None = Field(None, description="Caller is in at least one group.")
    method: list[str] | None = Field(
        None, description="Request method is one of these (HEAD counts as GET)."
    )
    path: PathTest | None = Field(
        None, description="Test on the canonical decoded path below the route's prefix."
    )
    client_ip: list[Network] | None = Field(
        None, description="Client address is in one of these networks."
    )
    reason: str | None = Field(None, description="Plain words for logs when this decides.")

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        kinds = [k for k in CONDITION_KINDS if getattr(self, _attr(k)) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of " + ", ".join(CONDITION_KINDS))
        compared = [name for name in COMPARISONS if getattr(self, name) is not None]
        if kinds[0] == "claim":
            problems = self.comparison_problems()
            if problems:
                raise ValueError("claim " + "; ".join(problems))
        elif compared or self.order is not None:
            raise ValueError(f"{', '.join(compared or ['order'])} applies to claim only")
        if (self.all is not None and not self.all) or (self.any is not None and not self.any):
            raise ValueError("all / any need at least one condition")
        return self

    @field_validator("method")
    @classmethod
    def _upper(cls, value: list[str] | None) -> list[str] | None:
        return [m.upper() for m in value] if value is not None else None


def _attr(kind: str) -> str:
    return "not_" if kind == "not" else kind


Condition.model_rebuild()


class Policy(Section):
    """Who may pass: deny rules refuse first; then every listed requirement must hold
    (empty means any authenticated)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

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
    all: list[Condition] = Field(
        default_factory=list, description="Conditions that must all hold (see docs/policy.md)."
    )
    any: list[Condition] = Field(
        default_factory=list, description="Conditions of which at least one must hold."
    )
    not_: Condition | None = Field(None, alias="not", description="A condition that must not hold.")
    deny: list[Condition] = Field(
        default_factory=list,
        description="Refuse when any of these holds, whatever else allows (deny wins).",
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


class StepUp(Section):
    """Authentication this route needs beyond a session: a level (acr) and / or recency."""

    acr_values: list[str] = Field(
        default_factory=list,
        description="Accepted acr values, preferred first (sent as acr_values). With the "
        "provider's acr_levels, any level at or above the lowest listed one passes.",
    )
    max_age: int | None = Field(
        None,
        ge=0,
        description="Most seconds since the user last authenticated (auth_time); an older "
        "sign-in is sent back to the provider with max_age.",
    )

    @model_validator(mode="after")
    def _something(self) -> StepUp:
        if not self.acr_values and self.max_age is None:
            raise ValueError("give acr_values, max_age or both")
        return self


class ExternalAuthorizer(Section):
    """An HTTP decision point asked after the route's own policy allowed (docs/policy.md)."""

    url: HttpUrl = Field(description="Where the decision request is POSTed (JSON).")
    timeout: Seconds = Field(
        1.0, description="Seconds to wait for an answer; no answer in time refuses (503)."
    )
    cache_ttl: float = Field(
        0, ge=0, description="Seconds an answer is reused for the same request (0: off)."
    )
    cache_max_entries: int = Field(10_000, ge=1, description="Most answers kept in the cache.")
    upstream_headers: list[str] = Field(
        default_factory=list,
        description="Header names the authorizer may add to the upstream request; others "
        "in its answer are ignored.",
    )

    @field_validator("upstream_headers")
    @classmethod
    def _header_names(cls, value: list[str]) -> list[str]:
        problems = [p for name in value for p in _token_header_problems(name)]
        if any(name.lower() == "authorization" for name in value):
            problems.append("header: 'Authorization' is the caller's or the gateway's")
        if problems:
            raise ValueError("; ".join(problems))
        return value


class RegoConfig(Section):
    """A Rego (OPA) policy for the route, evaluated in-process (optional extra `rego`)."""

    file: str = Field(description="The .rego file (read and compiled at start-up).")
    query: str = Field(
        "data.gateway",
        description="Gives true/false, or an object with boolean `allow` and a `reason`.",
    )


class Route(Section):
    name: str | None = Field(None, description="Label used in logs and metrics.")
    host: str | None = Field(
        None, description="Host to match: exact, or '*.example.com'. Absent: any host."
    )
    path: PathPrefix = Field(
        "/",
        description="Path prefix, matched at segment boundaries (`/admin` matches `/admin` "
        "and `/admin/x`, not `/administrator`: an upstream that matches bare prefixes, "
        "e.g. nginx `location /admin`, must not serve those); the longest matching prefix "
        "wins.",
    )
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
    require_dpop: bool = Field(
        False,
        description="On bearer routes, accept only DPoP-bound tokens with a valid proof "
        "(RFC 9449); plain bearer tokens get 401 with a DPoP challenge.",
    )
    identity_token: IdentityTokenConfig | None = Field(
        None, description="Mint a signed identity token for the upstream."
    )
    logout_notify_url: HttpUrl | None = Field(
        None, description="POST a logout notice here when a session of this route's app dies."
    )
    rego: RegoConfig | None = Field(
        None, description="Also evaluate this Rego policy (input: see docs/policy.md)."
    )
    authorizer: ExternalAuthorizer | None = Field(
        None, description="Also ask this external HTTP authorizer (fails closed)."
    )
    cors_preflight: bool = Field(
        False,
        description="Pass CORS preflights (OPTIONS with Origin and "
        "Access-Control-Request-Method, no credentials) to the upstream without sign-in; "
        "the upstream answers them. Every other request still needs authentication.",
    )
    step_up: StepUp | None = Field(
        None,
        description="Step-up: sessions below this level or older than max_age are sent "
        "back to the provider; bearer callers get 401 insufficient_user_authentication "
        "(RFC 9470).",
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
    def _dpop_needs_bearer(self) -> Route:
        if self.require_dpop and self.auth not in ("bearer", "login_or_bearer"):
            raise ValueError("require_dpop applies to tokens: use auth bearer or login_or_bearer")
        return self

    @model_validator(mode="after")
    def _public_policy(self) -> Route:
        # Only `methods` can be decided without a caller: any other rule on a public
        # route would look enforced and never be.
        if self.auth == "public" and (self.authorizer or self.rego) is not None:
            raise ValueError("authorizer / rego: a public route has no caller to authorize")
        if self.auth == "public" and self.step_up is not None:
            raise ValueError("step_up: a public route has no caller to authenticate again")
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
    acr_levels: list[str] = Field(
        default_factory=list,
        description="This provider's acr values from lowest to highest: a higher level meets "
        "a lower step-up requirement, and a session keeps the highest level it reached.",
    )
    claims_refresh_interval: Seconds | None = Field(
        None,
        description="Re-read userinfo this often (seconds) for sessions no refresh renews "
        "in that time; a refused answer ends the session (default: only on refresh).",
    )
    pkce: bool = Field(True, description="Use PKCE S256. Turn off only if the IdP rejects it.")
    pushed_authorization: bool = Field(
        False,
        description="Push the authorization request to the provider's "
        "pushed_authorization_request_endpoint (RFC 9126), so that the browser carries only "
        "request_uri and client_id. Always done when the provider's discovery says "
        "require_pushed_authorization_requests; without an advertised endpoint the "
        "login fails (502) rather than fall back.",
    )
    response_mode: Literal["query", "form_post"] = Field(
        "query",
        description="How the provider returns the authorization response: in the callback "
        "URL's query, or (form_post) in a POST the browser sends to the callback. form_post "
        "keeps code and state out of URLs; the login-binding cookie is then SameSite=None "
        "(it must survive the provider's cross-site POST), every other cookie stays Lax.",
    )
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
    end_with_access_token: bool = Field(
        True,
        description="A session whose access token expired and has no refresh token ends "
        "(sign in again). Off: it lives to idle/absolute timeout; an expired access token "
        "is never forwarded either way.",
    )
    revoke_tokens_on_admin_end: bool = Field(
        False,
        description="Also seal each session's tokens under the server key alone, so sessions "
        "ended without their browser (admin revocation, back-channel or front-channel "
        "logout) have their tokens revoked at the provider too. The cost: whoever holds "
        "both the store and sessions.secrets can read the tokens (docs/security.md).",
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


DEFAULT_DPOP_ALGORITHMS = ("ES256", "ES384", "PS256", "RS256", "EdDSA")


class Dpop(Section):
    enabled: bool = Field(
        True,
        description="Accept DPoP-bound access tokens (RFC 9449): the `DPoP` authorization "
        "scheme with a proof in the DPoP header. A token bound to a key (cnf.jkt) is refused "
        "without a valid proof of that key whether or not this is on.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DPOP_ALGORITHMS),
        description="Signature algorithms accepted for DPoP proofs (asymmetric only).",
    )
    max_age: Seconds = Field(
        60, description="A proof's `iat` may be at most this many seconds old."
    )
    leeway: float = Field(
        5, ge=0, le=300, description="Clock skew allowed for a proof's `iat`, seconds."
    )

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        if not value or any(a.lower() == "none" or a.upper().startswith("HS") for a in value):
            raise ValueError("DPoP proofs are signed with private keys: no 'none', no HS*")
        return value


class Bearer(Section):
    issuers: list[TrustedIssuer] = Field(default_factory=list)
    dpop: Dpop = Field(default_factory=Dpop)
    client_certificate_header: str | None = Field(
        None,
        description="Header in which a proxy listed in trusted_proxies passes the client's "
        "TLS certificate (URL-encoded PEM, as nginx's $ssl_client_escaped_cert), for tokens "
        "bound to a certificate (RFC 8705). Read only from trusted proxies, and never "
        "forwarded upstream.",
    )
    resource_metadata: bool = Field(
        True,
        description="Serve OAuth protected-resource metadata (RFC 9728) for bearer routes at "
        "/.well-known/oauth-protected-resource<route path> and name it in 401 challenges "
        "(`resource_metadata`), so that clients (MCP) find the authorization servers. Off: "
        "those paths go to the upstreams like any other.",
    )
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


def _tracing_installed() -> bool:
    """Whether the `tracing` extra (OpenTelemetry SDK and OTLP/HTTP exporter) is installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
    )


class Tracing(Section):
    enabled: bool = Field(
        False,
        description="Send OpenTelemetry traces (OTLP over HTTP). Needs the tracing extra: "
        "pip install 'oidc-gateway[tracing]'.",
    )
    endpoint: str = Field(
        "http://127.0.0.1:4318/v1/traces",
        description="OTLP/HTTP traces URL of the collector.",
    )
    headers: dict[str, Secret] = Field(
        default_factory=dict,
        description="Extra HTTP headers sent to the collector (e.g. its API key).",
    )
    timeout: Seconds = Field(10, description="Seconds one export to the collector may take.")
    service_name: str = Field("oidc-gateway", description="The service.name of every span.")
    sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of new traces recorded (0..1). A trace continued from a trusted "
        "caller follows the caller's sampling decision.",
    )
    accept_incoming: Literal["trusted_proxies", "always", "never"] = Field(
        "trusted_proxies",
        description="Whose traceparent/tracestate a request may continue: only peers in "
        "trusted_proxies, anyone, or nobody (every request starts a trace).",
    )

    @field_validator("enabled")
    @classmethod
    def _extra_installed(cls, value: bool) -> bool:
        if value and not _tracing_installed():
            raise ValueError(
                "OpenTelemetry is not installed; install the tracing extra "
                "(pip install 'oidc-gateway[tracing]') or set tracing.enabled: false"
            )
        return value


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
    tracing: Tracing = Field(default_factory=Tracing)
    ui: Ui = Field(default_factory=Ui, description="Branding and language of the gateway's pages.")

    # Rules across sections (unique names, a provider for each login route, ...) are in
    # gateway/web/rules.py, so `check` can report them all at once and `run` obeys them.
